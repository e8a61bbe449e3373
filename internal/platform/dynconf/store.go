// Package dynconf is live configuration: typed settings stored as JSON in
// the platform's SQL settings table, changed over an admin API and applied
// on every instance within seconds, without a restart.
//
// A component registers each setting it reads with a default and a
// validation function; a Registry polls the table's versions and swaps in
// changed values atomically, so readers call Setting.Get on the hot path
// with no lock and no query. An update goes through the same decoding and
// validation before it is stored, so a bad value is refused with a precise
// message and the old one keeps serving.
package dynconf

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/waypost/waypost/internal/platform/sqldb"
)

// Errors of the store and the registry; the HTTP edge maps each to a code.
var (
	// ErrNotFound: no row for that setting name.
	ErrNotFound = errors.New("dynconf: setting not stored")
	// ErrUnknownSetting: no component registered that name.
	ErrUnknownSetting = errors.New("dynconf: unknown setting")
	// ErrInvalid: the value does not decode or does not validate.
	ErrInvalid = errors.New("dynconf: invalid setting value")
	// ErrConflict: the stored version is not the one the writer expected.
	ErrConflict = errors.New("dynconf: version conflict")
)

// Entry is one stored setting.
type Entry struct {
	Name      string          `json:"name"`
	Value     json.RawMessage `json:"value"`
	Version   int64           `json:"version"`
	UpdatedAt time.Time       `json:"updatedAt"`
	UpdatedBy string          `json:"updatedBy,omitempty"`
}

// Store reads and writes the settings table (sqldb.PlatformMigrations).
type Store struct {
	db  *sqldb.DB
	now func() time.Time
}

// NewStore returns a Store over db. now may be nil (time.Now).
func NewStore(db *sqldb.DB, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, now: now}
}

// Get returns one setting, or ErrNotFound.
func (s *Store) Get(ctx context.Context, name string) (Entry, error) {
	e := Entry{Name: name}
	var value string
	err := s.db.QueryRowContext(ctx, s.db.Rebind(
		"SELECT value, version, updated_at, updated_by FROM settings WHERE name = ?"), name).
		Scan(&value, &e.Version, &e.UpdatedAt, &e.UpdatedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("setting %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return e, fmt.Errorf("read setting %q: %w", name, err)
	}
	e.Value = json.RawMessage(value)
	e.UpdatedAt = e.UpdatedAt.UTC()
	return e, nil
}

// Versions returns the version of every stored setting: the cheap query
// the registry polls.
func (s *Store) Versions(ctx context.Context) (map[string]int64, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT name, version FROM settings")
	if err != nil {
		return nil, fmt.Errorf("read setting versions: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var name string
		var v int64
		if err := rows.Scan(&name, &v); err != nil {
			return nil, fmt.Errorf("read setting versions: %w", err)
		}
		out[name] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read setting versions: %w", err)
	}
	return out, nil
}

// Put stores value (valid JSON) under name and returns the new entry. With
// ifVersion > 0 the write happens only when the stored version is
// ifVersion (ErrConflict otherwise; a missing row is version 0), so two
// operators editing at once cannot overwrite each other unseen; with
// ifVersion 0 it writes unconditionally.
func (s *Store) Put(ctx context.Context, name string, value json.RawMessage, by string, ifVersion int64) (Entry, error) {
	if !json.Valid(value) {
		return Entry{}, fmt.Errorf("setting %q: value is not JSON: %w", name, ErrInvalid)
	}
	at := s.now().UTC().Truncate(time.Microsecond)
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		var cur int64
		err := tx.QueryRowContext(ctx, s.db.Rebind("SELECT version FROM settings WHERE name = ?"), name).Scan(&cur)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			cur = 0
		case err != nil:
			return err
		}
		if ifVersion > 0 && cur != ifVersion {
			return fmt.Errorf("setting %q is at version %d, not %d: %w", name, cur, ifVersion, ErrConflict)
		}
		if cur == 0 {
			_, err = tx.ExecContext(ctx, s.db.Rebind(
				"INSERT INTO settings (name, value, version, updated_at, updated_by) VALUES (?, ?, 1, ?, ?)"),
				name, string(value), at, by)
			return err
		}
		res, err := tx.ExecContext(ctx, s.db.Rebind(
			"UPDATE settings SET value = ?, version = version + 1, updated_at = ?, updated_by = ? WHERE name = ? AND version = ?"),
			string(value), at, by, name, cur)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			return fmt.Errorf("setting %q changed while writing: %w", name, ErrConflict)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrConflict) {
			return Entry{}, err
		}
		// Two first writers racing on the primary key: one lost.
		if _, gerr := s.Get(ctx, name); gerr == nil && ifVersion > 0 {
			return Entry{}, fmt.Errorf("setting %q: %w", name, ErrConflict)
		}
		return Entry{}, fmt.Errorf("write setting %q: %w", name, err)
	}
	return s.Get(ctx, name)
}
