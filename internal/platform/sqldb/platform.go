package sqldb

import (
	"embed"
	"fmt"
	"io/fs"
)

//go:embed migrations
var platformFS embed.FS

// PlatformComponent is the component name of the platform's own schema.
const PlatformComponent = "platform"

// PlatformMigrations is the platform's own schema: the settings table that
// live configuration reads and writes.
func PlatformMigrations() Migrations {
	return EmbeddedMigrations(PlatformComponent, platformFS, "migrations")
}

// EmbeddedMigrations is the migration set of component whose per-dialect
// directories (sqlite/, mysql/, postgres/) sit under dir in fsys — the
// usual `//go:embed migrations` of a package that owns a schema.
func EmbeddedMigrations(component string, fsys fs.FS, dir string) Migrations {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		// fs.Sub fails only for an invalid path: a programming error.
		panic(fmt.Sprintf("sqldb: migrations of %s: %v", component, err))
	}
	return Migrations{Component: component, FS: sub}
}
