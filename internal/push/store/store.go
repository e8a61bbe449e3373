// Package store is the push component's SQL storage on SQLite, MySQL and
// PostgreSQL: apps and their API keys (an auth.Authenticator), channel
// accounts with their secrets encrypted at rest, and templates with their
// review cycle. Its schema is the migration set of component "push".
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/waypost/waypost/internal/platform/auth"
	"github.com/waypost/waypost/internal/platform/sqldb"
)

//go:embed migrations
var migrationsFS embed.FS

// Component is the name of this package's migration set.
const Component = "push"

// Migrations is the push component's schema, one directory per dialect.
func Migrations() sqldb.Migrations {
	return sqldb.EmbeddedMigrations(Component, migrationsFS, "migrations")
}

// Store errors beyond the push domain's own.
var (
	// ErrVersionConflict: the caller named a version that is no longer current.
	ErrVersionConflict = errors.New("template version conflict")
	// ErrUnknownKey: no API key has that id.
	ErrUnknownKey = errors.New("unknown API key")
	// ErrAccountInUse: a live template still sends through the account.
	ErrAccountInUse = errors.New("channel account in use")
)

// DefaultAppID is the app that bootstrap keys belong to.
const DefaultAppID = "default"

// Option adjusts a Store.
type Option func(*Store)

// WithClock sets the clock used for created/updated/audit times.
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// WithPreviousMasterKeys lets secrets sealed under older master keys be
// read while the current key seals new ones (key rotation).
func WithPreviousMasterKeys(keys ...[]byte) Option {
	return func(s *Store) { s.previous = append(s.previous, keys...) }
}

// Store reads and writes push admin data.
type Store struct {
	db       *sqldb.DB
	log      *slog.Logger
	now      func() time.Time
	previous [][]byte
	seal     *sealer
}

// New returns a Store over db, whose schema must include Migrations();
// masterKey (32 bytes, see DeriveMasterKey) encrypts channel-account secrets.
func New(db *sqldb.DB, masterKey []byte, logger *slog.Logger, opts ...Option) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{db: db, log: logger, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	seal, err := newSealer(masterKey, s.previous...)
	if err != nil {
		return nil, fmt.Errorf("push store: %w", err)
	}
	s.seal = seal
	return s, nil
}

// micros is the stored form of a time.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

func fromNullMicros(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

func (s *Store) q(query string) string { return s.db.Rebind(query) }

// Key is an API key as listed; the plaintext is never kept.
type Key struct {
	ID        string     `json:"id"`
	AppID     string     `json:"appId"`
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	CreatedAt time.Time  `json:"createdAt"`
	RevokedAt *time.Time `json:"revokedAt,omitempty"`
}

// EnsureApp creates app id unless it exists.
func (s *Store) EnsureApp(ctx context.Context, id, name string) error {
	var one int
	err := s.db.QueryRowContext(ctx, s.q("SELECT 1 FROM push_apps WHERE id = ?"), id).Scan(&one)
	if err == nil {
		return nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("ensure app %s: %w", id, err)
	}
	_, err = s.db.ExecContext(ctx, s.q("INSERT INTO push_apps (id, name, created_at) VALUES (?, ?, ?)"),
		id, name, micros(s.now()))
	if err != nil {
		// A concurrent caller may have created it first.
		if err2 := s.db.QueryRowContext(ctx, s.q("SELECT 1 FROM push_apps WHERE id = ?"), id).Scan(&one); err2 == nil {
			return nil
		}
		return fmt.Errorf("ensure app %s: %w", id, err)
	}
	return nil
}

func validScopes(scopes []string) error {
	if len(scopes) == 0 {
		return errors.New("at least one scope is required")
	}
	for _, sc := range scopes {
		if !auth.ValidScope(sc) {
			return fmt.Errorf("unknown scope %q (want some of %s)", sc, strings.Join(auth.AllScopes(), ", "))
		}
	}
	return nil
}

// CreateKey makes a new key for app with scopes and returns it with its
// plaintext, which is shown once and never stored.
func (s *Store) CreateKey(ctx context.Context, appID, name string, scopes []string) (Key, string, error) {
	if err := validScopes(scopes); err != nil {
		return Key{}, "", fmt.Errorf("create key: %w", err)
	}
	plain, id, hash := auth.NewKey()
	k, err := s.insertKey(ctx, appID, id, name, hash, scopes)
	if err != nil {
		return Key{}, "", err
	}
	return k, plain, nil
}

// HasKeys reports whether any key, live or revoked, exists; `up` creates a
// first key only on a database that never had one.
func (s *Store) HasKeys(ctx context.Context) (bool, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM push_api_keys`).Scan(&n); err != nil {
		return false, fmt.Errorf("count keys: %w", err)
	}
	return n > 0, nil
}

// EnsureKey makes plaintext (a bootstrap key from the environment) a live
// key of the default app with scopes; calling it again is a no-op, and a
// key that exists keeps its scopes (and stays revoked if it was revoked).
func (s *Store) EnsureKey(ctx context.Context, plaintext string, scopes []string) (Key, error) {
	if !auth.LooksLikeKey(plaintext) {
		return Key{}, fmt.Errorf("ensure key: a key must start with %q and carry at least 17 more characters", auth.KeyPrefix)
	}
	if err := validScopes(scopes); err != nil {
		return Key{}, fmt.Errorf("ensure key: %w", err)
	}
	hash := auth.HashKey(plaintext)
	if k, err := s.keyByHash(ctx, hash); err == nil {
		return k, nil
	} else if !errors.Is(err, sql.ErrNoRows) {
		return Key{}, fmt.Errorf("ensure key: %w", err)
	}
	if err := s.EnsureApp(ctx, DefaultAppID, "Default app"); err != nil {
		return Key{}, err
	}
	_, id, _ := auth.NewKey()
	k, err := s.insertKey(ctx, DefaultAppID, id, "bootstrap", hash, scopes)
	if err != nil {
		// Two instances starting together race on the UNIQUE hash.
		if k2, err2 := s.keyByHash(ctx, hash); err2 == nil {
			return k2, nil
		}
		return Key{}, err
	}
	return k, nil
}

func (s *Store) insertKey(ctx context.Context, appID, id, name, hash string, scopes []string) (Key, error) {
	now := s.now()
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO push_api_keys (id, app_id, name, key_hash, scopes, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`), id, appID, name, hash, strings.Join(scopes, " "), micros(now))
	if err != nil {
		return Key{}, fmt.Errorf("insert key %s: %w", id, err)
	}
	return Key{ID: id, AppID: appID, Name: name, Scopes: scopes, CreatedAt: fromMicros(micros(now))}, nil
}

const keyCols = "id, app_id, name, key_hash, scopes, created_at, revoked_at"

func scanKey(row interface{ Scan(...any) error }) (Key, string, error) {
	var (
		k         Key
		hash, scp string
		created   int64
		revoked   sql.NullInt64
	)
	if err := row.Scan(&k.ID, &k.AppID, &k.Name, &hash, &scp, &created, &revoked); err != nil {
		return Key{}, "", err
	}
	k.Scopes = strings.Fields(scp)
	k.CreatedAt = fromMicros(created)
	k.RevokedAt = fromNullMicros(revoked)
	return k, hash, nil
}

func (s *Store) keyByHash(ctx context.Context, hash string) (Key, error) {
	k, stored, err := scanKey(s.db.QueryRowContext(ctx, s.q("SELECT "+keyCols+" FROM push_api_keys WHERE key_hash = ?"), hash))
	if err != nil {
		return Key{}, err
	}
	// The lookup is by an index on the hash; comparing again in constant
	// time keeps the decision itself free of timing differences.
	if !auth.HashEqual(stored, hash) {
		return Key{}, sql.ErrNoRows
	}
	return k, nil
}

// RevokeKey revokes key id; revoking a revoked key is a no-op.
func (s *Store) RevokeKey(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, s.q("UPDATE push_api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"),
		micros(s.now()), id)
	if err != nil {
		return fmt.Errorf("revoke key %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var one int
		err := s.db.QueryRowContext(ctx, s.q("SELECT 1 FROM push_api_keys WHERE id = ?"), id).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("revoke key %s: %w", id, ErrUnknownKey)
		}
		if err != nil {
			return fmt.Errorf("revoke key %s: %w", id, err)
		}
	}
	return nil
}

// Authenticate verifies a plaintext key against the stored hashes; put an
// auth.Cache in front of it so the database is not asked on every request.
func (s *Store) Authenticate(ctx context.Context, token string) (auth.Principal, error) {
	if !auth.LooksLikeKey(token) {
		return auth.Principal{}, auth.ErrUnauthorized
	}
	k, err := s.keyByHash(ctx, auth.HashKey(token))
	if errors.Is(err, sql.ErrNoRows) {
		return auth.Principal{}, auth.ErrUnauthorized
	}
	if err != nil {
		return auth.Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	if k.RevokedAt != nil {
		return auth.Principal{}, fmt.Errorf("key %s revoked: %w", k.ID, auth.ErrUnauthorized)
	}
	return auth.Principal{AppID: k.AppID, KeyID: k.ID, Scopes: k.Scopes}, nil
}
