package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	// The pure-Go SQLite driver registers itself as "sqlite".
	_ "modernc.org/sqlite"
)

// ErrUnknownDSN is returned by Open for a DSN whose engine it cannot tell.
var ErrUnknownDSN = errors.New("unknown DSN scheme (want sqlite:, file:, mysql:// or postgres://)")

const (
	// sqliteBusyTimeout is how long a writer waits for SQLite's write lock
	// before giving up with SQLITE_BUSY.
	sqliteBusyTimeout = 5 * time.Second
	// sqliteMaxConns bounds the SQLite pool: WAL lets these connections read
	// in parallel, and with BEGIN IMMEDIATE the writers among them queue on
	// the busy handler instead of failing.
	sqliteMaxConns = 4
	// networkMaxConns bounds the MySQL and PostgreSQL pools per process.
	networkMaxConns = 32
	// networkConnLifetime stays below common server and proxy idle timeouts
	// (MySQL's wait_timeout, load balancers) so the pool never hands out a
	// connection the server has already dropped.
	networkConnLifetime = 3 * time.Minute
	dialTimeout         = 10 * time.Second
)

// Open connects to the database named by dsn, applies the engine settings
// Waypost relies on and pings it. Accepted forms:
//
//	sqlite:PATH, sqlite::memory:, file:PATH?…, file::memory:
//	mysql://user:pass@tcp(host:port)/db?…  (or mysql://user:pass@host:port/db?…)
//	postgres://user:pass@host:port/db?…   (or postgresql://…)
func Open(ctx context.Context, dsn string, logger *slog.Logger) (*DB, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var (
		db  *DB
		err error
	)
	switch {
	case strings.HasPrefix(dsn, "sqlite:"), strings.HasPrefix(dsn, "file:"):
		db, err = openSQLite(dsn)
	case strings.HasPrefix(dsn, "mysql://"):
		db, err = openMySQL(dsn)
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		db, err = openPostgres(dsn)
	default:
		return nil, fmt.Errorf("sqldb: open %s: %w", MaskDSN(dsn), ErrUnknownDSN)
	}
	if err != nil {
		return nil, fmt.Errorf("sqldb: open %s: %w", MaskDSN(dsn), err)
	}
	db.logger = logger
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("sqldb: ping %s at %s: %w", db.Dialect, MaskDSN(dsn), err)
	}
	logger.InfoContext(ctx, "sql database open", "dialect", string(db.Dialect), "dsn", MaskDSN(dsn))
	return db, nil
}

// sqliteTarget is a parsed SQLite DSN: where the database lives and the
// driver DSN that opens it with our settings.
type sqliteTarget struct {
	path      string // file path; empty for an in-memory database
	driverDSN string
}

// parseSQLite turns sqlite:PATH or file:PATH[?query] into a driver DSN with
// WAL, a busy timeout, foreign keys, immediate transactions and a stable time
// format, keeping any setting the caller gave explicitly.
func parseSQLite(dsn string) (sqliteTarget, error) {
	uri := strings.HasPrefix(dsn, "file:")
	rest := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "file:")
	if !uri {
		rest = strings.TrimPrefix(rest, "//")
	}
	path, rawQuery, _ := strings.Cut(rest, "?")
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return sqliteTarget{}, fmt.Errorf("parse sqlite query: %w", err)
	}
	memory := path == "" || path == ":memory:" || q.Get("mode") == "memory"
	if path == "" {
		path = ":memory:"
	}
	defaults := [][2]string{
		{"_busy_timeout", fmt.Sprint(sqliteBusyTimeout.Milliseconds())},
		{"_foreign_keys", "1"},
		// BEGIN IMMEDIATE takes the write lock when the transaction starts,
		// so a writer that has to wait does so in the busy handler. A deferred
		// transaction that reads and then writes would instead fail at once
		// with SQLITE_BUSY when another writer got there first.
		{"_txlock", "immediate"},
		{"_time_format", "sqlite"},
	}
	// Pragmas without a DSN key of their own, each unless the caller set it:
	//   - cache_size: up to 64 MiB of page cache per connection (SQLite's
	//     default is 2 MiB). A write transaction whose dirty pages outgrow
	//     the cache spills them to the WAL mid-transaction, and index pages
	//     that fall out of it are read back with a syscall each.
	//   - temp_store: the statement journal a multi-row INSERT … ON CONFLICT
	//     keeps (to undo a failing statement) lives in memory instead of a
	//     temporary file written page by page.
	for _, p := range []string{"cache_size(-65536)", "temp_store(memory)"} {
		if !hasPragma(q, p) {
			q.Add("_pragma", p)
		}
	}
	if !memory {
		defaults = append(defaults,
			[2]string{"_journal_mode", "WAL"},
			// NORMAL is durable across application crashes in WAL mode and
			// only risks the last commits on power loss; FULL would fsync
			// every commit.
			[2]string{"_synchronous", "NORMAL"},
		)
	}
	for _, kv := range defaults {
		if !hasAnyKey(q, kv[0]) {
			q.Set(kv[0], kv[1])
		}
	}
	t := sqliteTarget{driverDSN: path + "?" + q.Encode()}
	if uri {
		t.driverDSN = "file:" + t.driverDSN
	}
	if !memory {
		t.path = path
	}
	return t, nil
}

// hasPragma reports whether q has a _pragma of the same name as p ("name(value)"
// or "name=value").
func hasPragma(q url.Values, p string) bool {
	name := pragmaName(p)
	for _, v := range q["_pragma"] {
		if strings.EqualFold(pragmaName(v), name) {
			return true
		}
	}
	return false
}

func pragmaName(p string) string {
	if i := strings.IndexAny(p, "(="); i >= 0 {
		p = p[:i]
	}
	return strings.TrimSpace(p)
}

// hasAnyKey reports whether q sets key or the driver's alias for it.
func hasAnyKey(q url.Values, key string) bool {
	aliases := map[string]string{
		"_busy_timeout": "_timeout", "_foreign_keys": "_fk",
		"_journal_mode": "_journal", "_synchronous": "_sync",
	}
	return q.Has(key) || (aliases[key] != "" && q.Has(aliases[key]))
}

func openSQLite(dsn string) (*DB, error) {
	t, err := parseSQLite(dsn)
	if err != nil {
		return nil, err
	}
	if t.path != "" {
		if err := os.MkdirAll(filepath.Dir(t.path), 0o750); err != nil {
			return nil, fmt.Errorf("create sqlite directory: %w", err)
		}
	}
	sqlDB, err := sql.Open("sqlite", t.driverDSN)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if t.path == "" {
		// Every connection to :memory: is a separate, empty database, so an
		// in-memory database must live on exactly one connection that the
		// pool never closes.
		sqlDB.SetMaxOpenConns(1)
		sqlDB.SetMaxIdleConns(1)
		sqlDB.SetConnMaxLifetime(0)
		sqlDB.SetConnMaxIdleTime(0)
		return &DB{DB: sqlDB, Dialect: SQLite}, nil
	}
	sqlDB.SetMaxOpenConns(sqliteMaxConns)
	sqlDB.SetMaxIdleConns(sqliteMaxConns)
	// Write transactions get a connection of their own. SQLite has one
	// writer at a time anyway, so nothing is lost, and a lone writer keeps
	// its page cache: a connection throws its whole cache away when it
	// finds that another connection has written since its last
	// transaction, and writers taking turns on a shared pool did just that
	// on every commit. Waiters queue in the pool, in order, instead of
	// polling SQLite's busy handler.
	writes, err := sql.Open("sqlite", t.driverDSN)
	if err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	writes.SetMaxOpenConns(1)
	writes.SetMaxIdleConns(1)
	writes.SetConnMaxLifetime(0)
	writes.SetConnMaxIdleTime(0)
	return &DB{DB: sqlDB, Dialect: SQLite, lockPath: t.path, writes: writes}, nil
}

// parseMySQL accepts mysql://user:pass@tcp(host:port)/db?… (the driver's own
// form behind a scheme) and the URL form mysql://user:pass@host:port/db?…,
// then applies Waypost's connection settings.
func parseMySQL(dsn string) (*mysql.Config, error) {
	rest := strings.TrimPrefix(dsn, "mysql://")
	var (
		cfg *mysql.Config
		err error
	)
	if strings.Contains(rest, "(") {
		cfg, err = mysql.ParseDSN(rest)
	} else {
		cfg, err = parseMySQLURL(rest)
	}
	if err != nil {
		return nil, err
	}
	cfg.ParseTime = true
	// Times are written and read as UTC, and the session time zone matches,
	// so NOW() and CURRENT_TIMESTAMP agree with the values Go sends.
	cfg.Loc = time.UTC
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	if _, ok := cfg.Params["time_zone"]; !ok {
		cfg.Params["time_zone"] = "'+00:00'"
	}
	if !strings.Contains(rest, "charset=") && !strings.Contains(rest, "collation=") {
		if err := cfg.Apply(mysql.Charset("utf8mb4", "utf8mb4_unicode_ci")); err != nil {
			return nil, err
		}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = dialTimeout
	}
	return cfg, nil
}

func parseMySQLURL(rest string) (*mysql.Config, error) {
	u, err := url.Parse("mysql://" + rest)
	if err != nil {
		// url.Parse echoes the input, password included, in its error.
		return nil, errors.New("invalid mysql URL")
	}
	host := u.Host
	if host == "" {
		host = "127.0.0.1:3306"
	} else if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(host, "3306")
	}
	cfg, err := mysql.ParseDSN("tcp(" + host + ")/" + strings.TrimPrefix(u.Path, "/") + "?" + u.RawQuery)
	if err != nil {
		return nil, err
	}
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	return cfg, nil
}

func openMySQL(dsn string) (*DB, error) {
	cfg, err := parseMySQL(dsn)
	if err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	sqlDB := sql.OpenDB(connector)
	setNetworkPool(sqlDB)
	return &DB{DB: sqlDB, Dialect: MySQL}, nil
}

func parsePostgres(dsn string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors already mask the password.
		return nil, err
	}
	if _, ok := cfg.RuntimeParams["timezone"]; !ok {
		cfg.RuntimeParams["timezone"] = "UTC"
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = dialTimeout
	}
	return cfg, nil
}

func openPostgres(dsn string) (*DB, error) {
	cfg, err := parsePostgres(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	sqlDB := stdlib.OpenDB(*cfg)
	setNetworkPool(sqlDB)
	return &DB{DB: sqlDB, Dialect: Postgres}, nil
}

func setNetworkPool(db *sql.DB) {
	db.SetMaxOpenConns(networkMaxConns)
	db.SetMaxIdleConns(networkMaxConns / 4)
	db.SetConnMaxLifetime(networkConnLifetime)
}
