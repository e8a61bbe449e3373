package stmtcache

import (
	"context"
	"database/sql"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
)

func TestCache(t *testing.T) {
	ctx := context.Background()
	db := sqltest.New(t, sqldb.SQLite)
	_, err := db.ExecContext(ctx, "CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
	require.NoError(t, err)
	c := New(db.DB, db.Writes())
	require.NotSame(t, db.DB, db.Writes(), "a SQLite file has a pool of its own for transactions")
	const insert, get = "INSERT INTO kv (k, v) VALUES (?, ?)", "SELECT v FROM kv WHERE k = ?"

	t.Run("first met in a transaction: runs unprepared, prepared by Warm", func(t *testing.T) {
		require.NoError(t, db.InTx(ctx, func(tx *sql.Tx) error {
			_, err := c.On(tx).ExecContext(ctx, insert, "a", 1)
			return err
		}))
		require.Nil(t, c.lookup(c.keyOf(insert, true)))
		c.Warm(ctx)
		require.NotNil(t, c.lookup(c.keyOf(insert, true)))
		require.Nil(t, c.lookup(c.keyOf(insert, false)), "prepared on the transactions' pool only")
		require.NoError(t, db.InTx(ctx, func(tx *sql.Tx) error {
			_, err := c.On(tx).ExecContext(ctx, insert, "b", 2)
			return err
		}))
	})
	t.Run("a rolled back transaction leaves the statement usable", func(t *testing.T) {
		err := db.InTx(ctx, func(tx *sql.Tx) error {
			_, err := c.On(tx).ExecContext(ctx, insert, "a", 9) // duplicate key
			return err
		})
		require.Error(t, err)
	})
	t.Run("reads on the pool are prepared on first use", func(t *testing.T) {
		var v int
		require.NoError(t, c.On(db.DB).QueryRowContext(ctx, get, "b").Scan(&v))
		require.Equal(t, 2, v)
		require.NotNil(t, c.lookup(c.keyOf(get, false)))
		require.ErrorIs(t, c.On(db.DB).QueryRowContext(ctx, get, "zz").Scan(&v), sql.ErrNoRows)
		rows, err := c.On(db.DB).QueryContext(ctx, "SELECT k FROM kv ORDER BY k")
		require.NoError(t, err)
		var keys []string
		for rows.Next() {
			var k string
			require.NoError(t, rows.Scan(&k))
			keys = append(keys, k)
		}
		require.NoError(t, rows.Err())
		require.NoError(t, rows.Close())
		require.Equal(t, []string{"a", "b"}, keys)
	})
	t.Run("a bad query reports its error and is not cached", func(t *testing.T) {
		_, err := c.On(db.DB).ExecContext(ctx, "INSERT INTO nope VALUES (1)")
		require.Error(t, err)
		require.Nil(t, c.lookup(c.keyOf("INSERT INTO nope VALUES (1)", false)))
	})
	t.Run("nil cache passes through", func(t *testing.T) {
		var nc *Cache
		nc.Warm(ctx)
		var v int
		require.NoError(t, nc.On(db.DB).QueryRowContext(ctx, get, "a").Scan(&v))
		require.Equal(t, 1, v)
	})
}
