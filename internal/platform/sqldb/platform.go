package sqldb

import (
	"embed"
	"io/fs"
)

//go:embed migrations
var platformFS embed.FS

// PlatformComponent is the component name of the platform's own schema.
const PlatformComponent = "platform"

// PlatformMigrations is the platform's own schema: the settings table that
// live configuration reads and writes.
func PlatformMigrations() Migrations {
	sub, err := fs.Sub(platformFS, "migrations")
	if err != nil {
		// fs.Sub only fails for an invalid path, and "migrations" is valid.
		panic(err)
	}
	return Migrations{Component: PlatformComponent, FS: sub}
}
