// Package trace is push's minimal trace: a consumer (group "push-trace") of
// the anchors every stage publishes to push.TraceTopic, a SQL table of them
// (migration set "trace", one row per eventId) and the query API that
// answers what happened to a message, a receiver or a template's day. A
// later aggregator with realtime views replaces the consumer; the contract
// of the queries stays.
package trace

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/push"
)

//go:embed migrations
var migrationsFS embed.FS

// Component is the name of this package's migration set.
const Component = "trace"

// Migrations is the trace schema, one directory per dialect.
func Migrations() sqldb.Migrations {
	return sqldb.EmbeddedMigrations(Component, migrationsFS, "migrations")
}

// ErrInvalidAnchor: an anchor misses a required field or has one too long
// for the schema; retrying cannot store it.
var ErrInvalidAnchor = errors.New("trace: invalid anchor")

// Column limits of the schema.
const (
	maxEventID    = 191
	maxMessageID  = 64
	maxBusinessID = 32
	maxReceiver   = 191
	maxState      = 32
	maxDetail     = 1000 // characters; longer details are cut
)

// Event is one stored anchor as the query API reports it.
type Event struct {
	MessageID  string    `json:"messageId"`
	Receiver   string    `json:"receiver"`
	State      string    `json:"state"`
	At         time.Time `json:"at"`
	BusinessID string    `json:"businessId"`
	Detail     string    `json:"detail"`
}

// Store keeps anchors in SQL.
type Store struct {
	db *sqldb.DB
}

// NewStore returns a Store over db, whose schema must include Migrations().
func NewStore(db *sqldb.DB) *Store { return &Store{db: db} }

// Validate reports whether a can be stored, and cuts an over-long detail.
func Validate(a *push.Anchor) error {
	switch {
	case a.EventID == "" || len(a.EventID) > maxEventID:
		return fmt.Errorf("%w: eventId must be 1-%d bytes", ErrInvalidAnchor, maxEventID)
	case a.MessageID == "" || len(a.MessageID) > maxMessageID:
		return fmt.Errorf("%w: messageId must be 1-%d bytes", ErrInvalidAnchor, maxMessageID)
	case len(a.BusinessID) > maxBusinessID:
		return fmt.Errorf("%w: businessId longer than %d bytes", ErrInvalidAnchor, maxBusinessID)
	case len(a.Receiver) > maxReceiver:
		return fmt.Errorf("%w: receiver longer than %d bytes", ErrInvalidAnchor, maxReceiver)
	case a.State == "" || len(a.State) > maxState:
		return fmt.Errorf("%w: state must be 1-%d bytes", ErrInvalidAnchor, maxState)
	}
	if utf8.RuneCountInString(a.Detail) > maxDetail {
		a.Detail = string([]rune(a.Detail)[:maxDetail])
	}
	return nil
}

// Insert stores anchors in one multi-row statement, skipping any whose
// eventId is already stored, and returns how many rows it added. Callers
// pass anchors that passed Validate.
func (s *Store) Insert(ctx context.Context, anchors []push.Anchor) (int64, error) {
	if len(anchors) == 0 {
		return 0, nil
	}
	var b strings.Builder
	b.WriteString("INSERT INTO trace_anchors (event_id, message_id, business_id, receiver, state, at, detail) VALUES ")
	args := make([]any, 0, 7*len(anchors))
	for i, a := range anchors {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?)")
		args = append(args, a.EventID, a.MessageID, a.BusinessID, a.Receiver, a.State, a.At.UnixMicro(), a.Detail)
	}
	if s.db.Dialect == sqldb.MySQL {
		// A no-op update rather than INSERT IGNORE, which would also
		// swallow errors other than the duplicate.
		b.WriteString(" ON DUPLICATE KEY UPDATE event_id = event_id")
	} else {
		b.WriteString(" ON CONFLICT (event_id) DO NOTHING")
	}
	res, err := s.db.ExecContext(ctx, s.db.Rebind(b.String()), args...)
	if err != nil {
		return 0, fmt.Errorf("trace: insert %d anchors: %w", len(anchors), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("trace: insert %d anchors: rows affected: %w", len(anchors), err)
	}
	return n, nil
}

// Query selects events: by message or by receiver, optionally within
// [From, To). Limit bounds the answer to the latest events; it must be
// positive.
type Query struct {
	MessageID string
	Receiver  string
	From, To  time.Time
	Limit     int
}

// Events returns the events matching q, ordered by time (then arrival).
func (s *Store) Events(ctx context.Context, q Query) ([]Event, error) {
	if q.Limit <= 0 || (q.MessageID == "") == (q.Receiver == "") {
		return nil, fmt.Errorf("trace: query needs a positive limit and one of messageId and receiver")
	}
	var b strings.Builder
	b.WriteString("SELECT message_id, receiver, state, at, business_id, detail FROM trace_anchors WHERE ")
	var args []any
	if q.MessageID != "" {
		b.WriteString("message_id = ?")
		args = append(args, q.MessageID)
	} else {
		b.WriteString("receiver = ?")
		args = append(args, q.Receiver)
	}
	if !q.From.IsZero() {
		b.WriteString(" AND at >= ?")
		args = append(args, q.From.UnixMicro())
	}
	if !q.To.IsZero() {
		b.WriteString(" AND at < ?")
		args = append(args, q.To.UnixMicro())
	}
	// Newest first to keep the latest Limit, reversed below.
	fmt.Fprintf(&b, " ORDER BY at DESC, id DESC LIMIT %d", q.Limit)
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(b.String()), args...)
	if err != nil {
		return nil, fmt.Errorf("trace: events: %w", err)
	}
	defer func() { _ = rows.Close() }()
	out := []Event{}
	for rows.Next() {
		var (
			e  Event
			at int64
		)
		if err := rows.Scan(&e.MessageID, &e.Receiver, &e.State, &at, &e.BusinessID, &e.Detail); err != nil {
			return nil, fmt.Errorf("trace: events: %w", err)
		}
		e.At = time.UnixMicro(at).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trace: events: %w", err)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// Counts returns, per businessId among ids, how many anchors it has per
// state; a businessId without anchors is absent.
func (s *Store) Counts(ctx context.Context, ids ...string) (map[string]map[string]int64, error) {
	out := map[string]map[string]int64{}
	if len(ids) == 0 {
		return out, nil
	}
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ")
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(
		"SELECT business_id, state, COUNT(*) FROM trace_anchors WHERE business_id IN ("+marks+") GROUP BY business_id, state"), args...)
	if err != nil {
		return nil, fmt.Errorf("trace: counts: %w", err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var (
			id, state string
			n         int64
		)
		if err := rows.Scan(&id, &state, &n); err != nil {
			return nil, fmt.Errorf("trace: counts: %w", err)
		}
		if out[id] == nil {
			out[id] = map[string]int64{}
		}
		out[id][state] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trace: counts: %w", err)
	}
	return out, nil
}
