package sqldb

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMaskDSN(t *testing.T) {
	tests := []struct {
		name, dsn, want string
	}{
		{"mysql driver form", "mysql://app:s3cret@tcp(db:3306)/waypost?parseTime=true", "mysql://app:***@tcp(db:3306)/waypost?parseTime=true"},
		{"mysql driver form without scheme", "app:s3cret@tcp(db:3306)/waypost", "app:***@tcp(db:3306)/waypost"},
		{"mysql password with @ / ? :", "mysql://app:p@ss/w?o:rd@tcp(db:3306)/waypost", "mysql://app:***@tcp(db:3306)/waypost"},
		{"mysql url form", "mysql://app:s3cret@db:3306/waypost", "mysql://app:***@db:3306/waypost"},
		{"mysql no password", "mysql://root@tcp(127.0.0.1:3306)/", "mysql://root@tcp(127.0.0.1:3306)/"},
		{"postgres url", "postgres://app:s3cret@db:5432/waypost?sslmode=disable", "postgres://app:***@db:5432/waypost?sslmode=disable"},
		{"postgresql url encoded", "postgresql://app:p%40ss%3Aword@db/waypost", "postgresql://app:***@db/waypost"},
		{"postgres password param", "postgres://db/waypost?user=app&password=s3cret&sslmode=disable", "postgres://db/waypost?user=app&password=***&sslmode=disable"},
		{"postgres sslpassword param", "postgres://app@db/w?sslpassword=k3y", "postgres://app@db/w?sslpassword=***"},
		{"postgres keyword form", "host=db user=app password=s3cret dbname=w", "host=db user=app password=*** dbname=w"},
		{"postgres keyword quoted", "host=db password='s3 cr@t' dbname=w", "host=db password=*** dbname=w"},
		{"sqlite path with colon and at", "sqlite:/data/a:b@c.db", "sqlite:/data/a:b@c.db"},
		{"sqlite memory", "sqlite::memory:", "sqlite::memory:"},
		{"sqlite key param", "file:/data/x.db?_key=s3cret&mode=rwc", "file:/data/x.db?_key=***&mode=rwc"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MaskDSN(tt.dsn)
			require.Equal(t, tt.want, got)
			for _, secret := range []string{"s3cret", "p@ss", "k3y", "s3 cr@t", "p%40ss"} {
				require.NotContains(t, got, secret)
			}
		})
	}
}

func TestRebind(t *testing.T) {
	tests := []struct {
		name    string
		dialect Dialect
		in      string
		want    string
	}{
		{"postgres numbers placeholders", Postgres, "SELECT * FROM t WHERE a = ? AND b IN (?, ?)", "SELECT * FROM t WHERE a = $1 AND b IN ($2, $3)"},
		{"postgres keeps quoted marks", Postgres, `SELECT '?', "a?b", 'it''s ?' FROM t WHERE x = ?`, `SELECT '?', "a?b", 'it''s ?' FROM t WHERE x = $1`},
		{"postgres keeps comments", Postgres, "SELECT 1 -- why?\nFROM t /* really? */ WHERE x = ?", "SELECT 1 -- why?\nFROM t /* really? */ WHERE x = $1"},
		{"postgres unterminated quote", Postgres, "SELECT ? , 'a?", "SELECT $1 , 'a?"},
		{"postgres no placeholders", Postgres, "SELECT 1", "SELECT 1"},
		{"mysql unchanged", MySQL, "SELECT ? FROM t", "SELECT ? FROM t"},
		{"sqlite unchanged", SQLite, "SELECT ? FROM t", "SELECT ? FROM t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, Rebind(tt.dialect, tt.in))
			require.Equal(t, tt.want, (&DB{Dialect: tt.dialect}).Rebind(tt.in))
		})
	}
}

func TestParseSQLite(t *testing.T) {
	tests := []struct {
		name       string
		dsn        string
		wantPath   string
		wantPrefix string
		want       map[string]string
	}{
		{"plain path", "sqlite:/d/w.db", "/d/w.db", "/d/w.db?", map[string]string{
			"_journal_mode": "WAL", "_busy_timeout": "5000", "_foreign_keys": "1", "_txlock": "immediate", "_synchronous": "NORMAL"}},
		{"double slash", "sqlite://data/w.db", "data/w.db", "data/w.db?", map[string]string{"_journal_mode": "WAL"}},
		{"memory", "sqlite::memory:", "", ":memory:?", map[string]string{"_foreign_keys": "1", "_journal_mode": ""}},
		{"file uri keeps prefix", "file:/d/w.db?mode=rwc", "/d/w.db", "file:/d/w.db?", map[string]string{"mode": "rwc", "_txlock": "immediate"}},
		{"file memory", "file::memory:?cache=shared", "", "file::memory:?", map[string]string{"cache": "shared"}},
		{"caller setting wins", "sqlite:/d/w.db?_busy_timeout=100&_journal=DELETE", "/d/w.db", "/d/w.db?", map[string]string{
			"_busy_timeout": "100", "_journal": "DELETE", "_journal_mode": ""}},
	}
	pragmaTests := []struct {
		name string
		dsn  string
		want []string
	}{
		{"default pragmas", "sqlite:/d/w.db", []string{"cache_size(-65536)", "temp_store(memory)"}},
		{"caller pragma wins", "sqlite:/d/w.db?_pragma=CACHE_SIZE%3D-1000&_pragma=mmap_size(0)",
			[]string{"CACHE_SIZE=-1000", "mmap_size(0)", "temp_store(memory)"}},
	}
	for _, tt := range pragmaTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSQLite(tt.dsn)
			require.NoError(t, err)
			_, raw, _ := strings.Cut(got.driverDSN, "?")
			q, err := url.ParseQuery(raw)
			require.NoError(t, err)
			require.ElementsMatch(t, tt.want, q["_pragma"])
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSQLite(tt.dsn)
			require.NoError(t, err)
			require.Equal(t, tt.wantPath, got.path)
			require.True(t, strings.HasPrefix(got.driverDSN, tt.wantPrefix), got.driverDSN)
			_, raw, _ := strings.Cut(got.driverDSN, "?")
			q, err := url.ParseQuery(raw)
			require.NoError(t, err)
			for k, v := range tt.want {
				require.Equal(t, v, q.Get(k), k)
			}
		})
	}
}

func TestParseMySQL(t *testing.T) {
	tests := []struct {
		name, dsn        string
		user, pass, addr string
		dbName, timeZone string
		collation        string
	}{
		{name: "driver form", dsn: "mysql://app:pw@tcp(db:3307)/w", user: "app", pass: "pw", addr: "db:3307", dbName: "w", timeZone: "'+00:00'", collation: "utf8mb4_unicode_ci"},
		{name: "url form default port", dsn: "mysql://app:p%40w@db/w?time_zone=%27%2B08%3A00%27", user: "app", pass: "p@w", addr: "db:3306", dbName: "w", timeZone: "'+08:00'", collation: "utf8mb4_unicode_ci"},
		{name: "caller collation kept", dsn: "mysql://root@tcp(127.0.0.1:3306)/?collation=utf8mb4_bin", user: "root", addr: "127.0.0.1:3306", timeZone: "'+00:00'", collation: "utf8mb4_bin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseMySQL(tt.dsn)
			require.NoError(t, err)
			require.Equal(t, tt.user, cfg.User)
			require.Equal(t, tt.pass, cfg.Passwd)
			require.Equal(t, tt.addr, cfg.Addr)
			require.Equal(t, tt.dbName, cfg.DBName)
			require.Equal(t, tt.timeZone, cfg.Params["time_zone"])
			require.Equal(t, tt.collation, cfg.Collation)
			require.True(t, cfg.ParseTime)
			require.Equal(t, time.UTC, cfg.Loc)
		})
	}
}

func TestParsePostgres(t *testing.T) {
	cfg, err := parsePostgres("postgresql://app:pw@db:5433/w?sslmode=disable")
	require.NoError(t, err)
	require.Equal(t, "db", cfg.Host)
	require.Equal(t, uint16(5433), cfg.Port)
	require.Equal(t, "w", cfg.Database)
	require.Equal(t, "UTC", cfg.RuntimeParams["timezone"])

	_, err = parsePostgres("postgres://app:s3cret@db:notaport/w")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "s3cret")
}
