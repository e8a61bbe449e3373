package sqldb_test

import (
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
)

// migrationFS builds a set with the same files for every dialect.
func migrationFS(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for _, d := range sqltest.Dialects() {
		for name, body := range files {
			fsys[string(d)+"/"+name] = &fstest.MapFile{Data: []byte(body)}
		}
	}
	return fsys
}

const (
	createWidgets = "-- +goose Up\nCREATE TABLE widgets (id INTEGER NOT NULL PRIMARY KEY, name VARCHAR(64) NOT NULL);\n"
	addGadgets    = "-- +goose Up\nCREATE TABLE gadgets (id INTEGER NOT NULL PRIMARY KEY);\nINSERT INTO gadgets (id) VALUES (1);\n"
	broken        = "-- +goose Up\nCREATE TABLE broken_half (id INTEGER NOT NULL PRIMARY KEY);\nTHIS IS NOT SQL;\n"
)

func appliedVersions(t *testing.T, db *sqldb.DB, sets ...sqldb.Migrations) map[string][]int64 {
	t.Helper()
	st, err := db.MigrationStatus(t.Context(), sets...)
	require.NoError(t, err)
	out := map[string][]int64{}
	for _, s := range st {
		if s.Applied {
			require.False(t, s.AppliedAt.IsZero())
			out[s.Component] = append(out[s.Component], s.Version)
		}
	}
	return out
}

func TestMigrateTwiceIsNoOpAndStatusLists(t *testing.T) {
	shop := sqldb.Migrations{Component: "shop", FS: migrationFS(map[string]string{
		"0001_widgets.sql": createWidgets,
		"0002_gadgets.sql": addGadgets,
	})}
	sqltest.EachDialect(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		before, err := db.MigrationStatus(ctx, shop)
		require.NoError(t, err)
		require.Equal(t, []sqldb.MigrationStatus{
			{Component: "shop", Version: 1, File: "0001_widgets.sql"},
			{Component: "shop", Version: 2, File: "0002_gadgets.sql"},
		}, before)

		require.NoError(t, db.Migrate(ctx, shop))
		// A second run must not re-run 0002, whose INSERT would then fail on
		// its primary key.
		require.NoError(t, db.Migrate(ctx, shop, sqldb.PlatformMigrations()))

		require.Equal(t, map[string][]int64{"shop": {1, 2}, "platform": {1}},
			appliedVersions(t, db, shop, sqldb.PlatformMigrations()))
		st, err := db.MigrationStatus(ctx, sqldb.PlatformMigrations())
		require.NoError(t, err)
		require.Len(t, st, 1)
		require.Equal(t, "0001_settings.sql", st[0].File)

		// A new file in the set is picked up by the next run, alone.
		shop3 := sqldb.Migrations{Component: "shop", FS: migrationFS(map[string]string{
			"0001_widgets.sql": createWidgets,
			"0002_gadgets.sql": addGadgets,
			"0003_add_col.sql": "-- +goose Up\nALTER TABLE widgets ADD COLUMN colour VARCHAR(16);\n",
		})}
		require.NoError(t, db.Migrate(ctx, shop3))
		require.Equal(t, []int64{1, 2, 3}, appliedVersions(t, db, shop3)["shop"])
		var n int
		require.NoError(t, db.QueryRowContext(ctx, "SELECT COUNT(*) FROM gadgets").Scan(&n))
		require.Equal(t, 1, n)
	})
}

func TestMigrateFailureNamesFileAndIsNotApplied(t *testing.T) {
	bad := sqldb.Migrations{Component: "shop", FS: migrationFS(map[string]string{
		"0001_widgets.sql": createWidgets,
		"0002_broken.sql":  broken,
	})}
	sqltest.EachDialect(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		err := db.Migrate(ctx, bad)
		require.Error(t, err)
		for _, want := range []string{"migrate shop", "version 2", string(db.Dialect) + "/0002_broken.sql", "not applied"} {
			require.Contains(t, err.Error(), want)
		}
		require.Equal(t, map[string][]int64{"shop": {1}}, appliedVersions(t, db, bad))

		if db.Dialect != sqldb.MySQL {
			// The file ran in one transaction, so its first statement is gone
			// too. (MySQL commits DDL implicitly; there it stays behind.)
			var n int
			err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM broken_half").Scan(&n)
			require.Error(t, err)
		}

		// Running again fails the same way instead of skipping the file.
		require.ErrorContains(t, db.Migrate(ctx, bad), "0002_broken.sql")
	})
}

func TestMigrateRejectsBadSets(t *testing.T) {
	db := sqltest.New(t, sqldb.SQLite)
	tests := []struct {
		name string
		set  sqldb.Migrations
		want string
	}{
		{"bad component", sqldb.Migrations{Component: "Shop-1", FS: migrationFS(nil)}, "component"},
		{"nil fs", sqldb.Migrations{Component: "shop"}, "nil FS"},
		{"no files for dialect", sqldb.Migrations{Component: "shop", FS: fstest.MapFS{
			"mysql/0001_a.sql": {Data: []byte(createWidgets)}}}, "sqlite"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.ErrorContains(t, db.Migrate(t.Context(), tt.set), tt.want)
		})
	}
}

func TestMigrateConcurrentInstances(t *testing.T) {
	shop := sqldb.Migrations{Component: "shop", FS: migrationFS(map[string]string{
		"0001_widgets.sql": createWidgets,
		"0002_gadgets.sql": addGadgets,
	})}
	for _, d := range sqltest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			dsn := sqltest.NewDSN(t, d)
			// Two handles stand for two instances starting at once on one
			// fresh database; both must succeed and the work happen once.
			const instances = 2
			dbs := make([]*sqldb.DB, instances)
			for i := range dbs {
				db, err := sqldb.Open(t.Context(), dsn, nil)
				require.NoError(t, err)
				t.Cleanup(func() { _ = db.Close() })
				dbs[i] = db
			}
			// Create the version tables first, so both instances reach the
			// "what is pending?" step together rather than one waiting on
			// the other's table creation.
			_, err := dbs[0].MigrationStatus(t.Context(), shop, sqldb.PlatformMigrations())
			require.NoError(t, err)
			g, ctx := errgroup.WithContext(t.Context())
			for _, db := range dbs {
				g.Go(func() error { return db.Migrate(ctx, shop, sqldb.PlatformMigrations()) })
			}
			require.NoError(t, g.Wait())
			require.Equal(t, map[string][]int64{"shop": {1, 2}, "platform": {1}},
				appliedVersions(t, dbs[0], shop, sqldb.PlatformMigrations()))
			var n int
			require.NoError(t, dbs[1].QueryRowContext(t.Context(), "SELECT COUNT(*) FROM gadgets").Scan(&n))
			require.Equal(t, 1, n)
		})
	}
}
