package sqldb_test

import (
	"database/sql"
	"sync/atomic"
	"testing"

	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
)

func BenchmarkRebind(b *testing.B) {
	q := "UPDATE settings SET value = ?, version = version + 1, updated_at = ?, updated_by = ? WHERE name = ? AND version = ?"
	for b.Loop() {
		_ = sqldb.Rebind(sqldb.Postgres, q)
	}
}

func newBenchTable(b *testing.B) *sqldb.DB {
	db := sqltest.New(b, sqldb.SQLite)
	_, err := db.ExecContext(b.Context(), "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, k INTEGER NOT NULL, body TEXT NOT NULL)")
	if err != nil {
		b.Fatal(err)
	}
	return db
}

// BenchmarkSQLiteInsertParallel measures concurrent single-row autocommit
// inserts into a WAL file database (the embedded mode's write path).
func BenchmarkSQLiteInsertParallel(b *testing.B) {
	db := newBenchTable(b)
	ctx := b.Context()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := db.ExecContext(ctx, "INSERT INTO events (k, body) VALUES (?, ?)", 1, "payload"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkSQLiteMixedParallel is nine point reads to one transactional write,
// from concurrent goroutines.
func BenchmarkSQLiteMixedParallel(b *testing.B) {
	db := newBenchTable(b)
	ctx := b.Context()
	for i := range 1000 {
		if _, err := db.ExecContext(ctx, "INSERT INTO events (k, body) VALUES (?, ?)", i, "payload"); err != nil {
			b.Fatal(err)
		}
	}
	var n atomic.Int64
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			var err error
			if i%10 == 0 {
				err = db.InTx(ctx, func(tx *sql.Tx) error {
					_, err := tx.ExecContext(ctx, "INSERT INTO events (k, body) VALUES (?, ?)", i, "payload")
					return err
				})
			} else {
				var body string
				err = db.QueryRowContext(ctx, "SELECT body FROM events WHERE id = ?", 1+i%1000).Scan(&body)
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}
