package sqltest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/testenv"
)

func TestWithDatabase(t *testing.T) {
	tests := []struct {
		name, dsn, want string
		fn              func(string, string) (string, error)
	}{
		{"mysql driver form", "mysql://root@tcp(127.0.0.1:3306)/", "mysql://root@tcp(127.0.0.1:3306)/wp_x", mysqlWithDatabase},
		{"mysql driver form replaces db", "mysql://u:p@tcp(db:3306)/old?parseTime=true", "mysql://u:p@tcp(db:3306)/wp_x?parseTime=true", mysqlWithDatabase},
		{"mysql url form", "mysql://u:p@db:3306/old", "mysql://u:p@db:3306/wp_x", mysqlWithDatabase},
		{"postgres", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "postgres://postgres@127.0.0.1:5432/wp_x?sslmode=disable", postgresWithDatabase},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.fn(tt.dsn, "wp_x")
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestDialects(t *testing.T) {
	require.Equal(t, []sqldb.Dialect{sqldb.SQLite, sqldb.MySQL, sqldb.Postgres}, Dialects())
}

func TestNewDropsServerDatabases(t *testing.T) {
	for _, d := range []sqldb.Dialect{sqldb.MySQL, sqldb.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			var name string
			t.Run("use", func(t *testing.T) {
				db := New(t, d)
				q := "SELECT DATABASE()"
				if d == sqldb.Postgres {
					q = "SELECT current_database()"
				}
				require.NoError(t, db.QueryRowContext(t.Context(), q).Scan(&name))
				require.Regexp(t, `^wp_[0-9a-f]{12}$`, name)
			})
			if name == "" {
				t.Skip("server unavailable")
			}
			admin := mustAdmin(t, d)
			var n int
			q := "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ?"
			if d == sqldb.Postgres {
				q = "SELECT COUNT(*) FROM pg_database WHERE datname = $1"
			}
			require.NoError(t, admin.QueryRowContext(t.Context(), q, name).Scan(&n))
			require.Zero(t, n, "database %s still exists after the test", name)
		})
	}
}

func mustAdmin(t *testing.T, d sqldb.Dialect) *sqldb.DB {
	dsn := map[sqldb.Dialect]string{sqldb.MySQL: testenv.MySQLDSN(), sqldb.Postgres: testenv.PostgresDSN()}[d]
	db, err := sqldb.Open(t.Context(), dsn, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}
