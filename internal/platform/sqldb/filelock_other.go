//go:build !unix

package sqldb

import "context"

// lockFile is a no-op where flock is unavailable: Migrate calls through one
// handle are still serialised by DB.migrateMu, and the embedded SQLite
// database is owned by a single process.
func lockFile(context.Context, string) (func(), error) { return func() {}, nil }
