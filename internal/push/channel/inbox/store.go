// Package inbox is push's in-app inbox channel: a SQL store of each
// receiver's messages (migration set "inbox"), a sender that writes to it,
// an in-process hub that fans new messages out to live SSE subscribers, and
// the HTTP API to list, mark read and stream a receiver's messages.
//
// Several instances share the store; an SSE subscriber connected to one
// instance learns of messages sent by another through the hub's light poll
// of the store (every few seconds), so no extra infrastructure is needed.
package inbox

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/waypost/waypost/internal/platform/sqldb"
)

//go:embed migrations
var migrationsFS embed.FS

// Component is the name of this package's migration set.
const Component = "inbox"

// Migrations is the inbox schema, one directory per dialect.
func Migrations() sqldb.Migrations {
	return sqldb.EmbeddedMigrations(Component, migrationsFS, "migrations")
}

// Store errors.
var (
	// ErrNotFound: no such message for that receiver.
	ErrNotFound = errors.New("inbox: message not found")
	// ErrInvalid: a field is empty or too long for the schema.
	ErrInvalid = errors.New("inbox: invalid message")
)

// Column limits of the schema, checked before writing so every engine
// refuses the same input.
const (
	maxReceiver   = 191
	maxMessageID  = 64
	maxBusinessID = 32
)

// Message is one stored inbox message.
type Message struct {
	// ID is the store's sequence number: it orders messages and is the SSE
	// event id.
	ID         int64
	Receiver   string
	MessageID  string
	BusinessID string
	TemplateID int64
	Subject    string
	Text       string
	ReadAt     *time.Time
	CreatedAt  time.Time
}

// Store keeps inbox messages in SQL.
type Store struct {
	db  *sqldb.DB
	now func() time.Time
}

// StoreOption tunes a Store.
type StoreOption func(*Store)

// WithStoreClock sets the clock used for created and read times.
func WithStoreClock(now func() time.Time) StoreOption { return func(s *Store) { s.now = now } }

// NewStore returns a Store over db, whose schema must include Migrations().
func NewStore(db *sqldb.DB, opts ...StoreOption) *Store {
	s := &Store{db: db, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

const cols = "id, receiver, message_id, business_id, template_id, subject, text, read_at, created_at"

// Put stores m for its receiver unless a message with the same MessageID is
// already there; it returns the stored message and whether it was new. A
// redelivered send therefore never duplicates a message.
func (s *Store) Put(ctx context.Context, m Message) (Message, bool, error) {
	if err := validate(m); err != nil {
		return Message{}, false, err
	}
	m.CreatedAt = s.now().UTC().Truncate(time.Microsecond)
	m.ReadAt = nil
	var q string
	switch s.db.Dialect {
	case sqldb.MySQL:
		// Touching id alone makes a duplicate a no-op without swallowing
		// other errors the way INSERT IGNORE would.
		q = "INSERT INTO inbox_messages (receiver, message_id, business_id, template_id, subject, text, created_at) " +
			"VALUES (?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE id = id"
	default:
		q = "INSERT INTO inbox_messages (receiver, message_id, business_id, template_id, subject, text, created_at) " +
			"VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (receiver, message_id) DO NOTHING"
	}
	// Writes go through the write connection, which on SQLite keeps its
	// page cache only while no other connection writes.
	res, err := s.db.Writes().ExecContext(ctx, s.db.Rebind(q), m.Receiver, m.MessageID, m.BusinessID, m.TemplateID,
		m.Subject, m.Text, m.CreatedAt.UnixMicro())
	if err != nil {
		return Message{}, false, fmt.Errorf("inbox: put %s for %s: %w", m.MessageID, m.Receiver, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return Message{}, false, fmt.Errorf("inbox: put %s: rows affected: %w", m.MessageID, err)
	}
	stored, err := s.Get(ctx, m.Receiver, m.MessageID)
	if err != nil {
		return Message{}, false, err
	}
	return stored, n == 1, nil
}

func validate(m Message) error {
	switch {
	case m.Receiver == "" || len(m.Receiver) > maxReceiver:
		return fmt.Errorf("%w: receiver must be 1-%d bytes", ErrInvalid, maxReceiver)
	case m.MessageID == "" || len(m.MessageID) > maxMessageID:
		return fmt.Errorf("%w: messageId must be 1-%d bytes", ErrInvalid, maxMessageID)
	case len(m.BusinessID) > maxBusinessID:
		return fmt.Errorf("%w: businessId longer than %d bytes", ErrInvalid, maxBusinessID)
	}
	return nil
}

// Get returns one message of receiver.
func (s *Store) Get(ctx context.Context, receiver, messageID string) (Message, error) {
	row := s.db.QueryRowContext(ctx, s.db.Rebind("SELECT "+cols+" FROM inbox_messages WHERE receiver = ? AND message_id = ?"),
		receiver, messageID)
	m, err := scan(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Message{}, fmt.Errorf("inbox: get %s for %s: %w", messageID, receiver, ErrNotFound)
	}
	if err != nil {
		return Message{}, fmt.Errorf("inbox: get %s for %s: %w", messageID, receiver, err)
	}
	return m, nil
}

// ListOptions selects a page of a receiver's messages, newest first.
type ListOptions struct {
	// Before, when positive, starts the page below this ID (the previous
	// page's NextCursor).
	Before int64
	// UnreadOnly skips messages already read.
	UnreadOnly bool
	// Limit bounds the page; it must be positive.
	Limit int
}

// Page is one page of messages, newest first.
type Page struct {
	Messages []Message
	// Next is the Before of the following page, or 0 when this is the last.
	Next int64
}

// List returns a page of receiver's messages, newest first.
func (s *Store) List(ctx context.Context, receiver string, o ListOptions) (Page, error) {
	if o.Limit <= 0 {
		return Page{}, fmt.Errorf("%w: limit must be positive", ErrInvalid)
	}
	var b strings.Builder
	b.WriteString("SELECT " + cols + " FROM inbox_messages WHERE receiver = ?")
	args := []any{receiver}
	if o.Before > 0 {
		b.WriteString(" AND id < ?")
		args = append(args, o.Before)
	}
	if o.UnreadOnly {
		b.WriteString(" AND read_at IS NULL")
	}
	// One row more than asked tells whether another page follows.
	fmt.Fprintf(&b, " ORDER BY id DESC LIMIT %d", o.Limit+1)
	msgs, err := s.query(ctx, b.String(), args...)
	if err != nil {
		return Page{}, fmt.Errorf("inbox: list %s: %w", receiver, err)
	}
	var p Page
	if len(msgs) > o.Limit {
		msgs = msgs[:o.Limit]
		p.Next = msgs[len(msgs)-1].ID
	}
	p.Messages = msgs
	return p, nil
}

// After returns up to limit of receiver's messages with ID above after,
// oldest first: what an SSE client that last saw after has missed.
func (s *Store) After(ctx context.Context, receiver string, after int64, limit int) ([]Message, error) {
	msgs, err := s.query(ctx, fmt.Sprintf("SELECT "+cols+" FROM inbox_messages WHERE receiver = ? AND id > ? ORDER BY id LIMIT %d", limit),
		receiver, after)
	if err != nil {
		return nil, fmt.Errorf("inbox: messages of %s after %d: %w", receiver, after, err)
	}
	return msgs, nil
}

// CreatedSince returns up to limit messages of any receiver created at or
// after since with ID above after, in ID order; the hub's poll pages with it.
func (s *Store) CreatedSince(ctx context.Context, since time.Time, after int64, limit int) ([]Message, error) {
	msgs, err := s.query(ctx, fmt.Sprintf("SELECT "+cols+" FROM inbox_messages WHERE created_at >= ? AND id > ? ORDER BY id LIMIT %d", limit),
		since.UnixMicro(), after)
	if err != nil {
		return nil, fmt.Errorf("inbox: messages since %s: %w", since.Format(time.RFC3339), err)
	}
	return msgs, nil
}

// MarkRead marks one message of receiver read; marking it again keeps the
// first read time.
func (s *Store) MarkRead(ctx context.Context, receiver, messageID string) error {
	if _, err := s.db.Writes().ExecContext(ctx, s.db.Rebind("UPDATE inbox_messages SET read_at = ? WHERE receiver = ? AND message_id = ? AND read_at IS NULL"),
		s.now().UnixMicro(), receiver, messageID); err != nil {
		return fmt.Errorf("inbox: mark %s read for %s: %w", messageID, receiver, err)
	}
	// Zero rows changed means either unknown or already read; only the
	// first is an error.
	if _, err := s.Get(ctx, receiver, messageID); err != nil {
		return err
	}
	return nil
}

// MarkAllRead marks every unread message of receiver read and returns how
// many it marked.
func (s *Store) MarkAllRead(ctx context.Context, receiver string) (int64, error) {
	res, err := s.db.Writes().ExecContext(ctx, s.db.Rebind("UPDATE inbox_messages SET read_at = ? WHERE receiver = ? AND read_at IS NULL"),
		s.now().UnixMicro(), receiver)
	if err != nil {
		return 0, fmt.Errorf("inbox: mark all read for %s: %w", receiver, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("inbox: mark all read for %s: rows affected: %w", receiver, err)
	}
	return n, nil
}

func (s *Store) query(ctx context.Context, q string, args ...any) ([]Message, error) {
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(q), args...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var out []Message
	for rows.Next() {
		m, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

func scan(r interface{ Scan(...any) error }) (Message, error) {
	var (
		m       Message
		readAt  sql.NullInt64
		created int64
	)
	if err := r.Scan(&m.ID, &m.Receiver, &m.MessageID, &m.BusinessID, &m.TemplateID, &m.Subject, &m.Text,
		&readAt, &created); err != nil {
		return Message{}, err
	}
	m.CreatedAt = time.UnixMicro(created).UTC()
	if readAt.Valid {
		t := time.UnixMicro(readAt.Int64).UTC()
		m.ReadAt = &t
	}
	return m, nil
}
