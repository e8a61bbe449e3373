package trace

import (
	"context"
	"time"

	"github.com/waypost/waypost/internal/push"
)

// DetailStore keeps every trace event for the queries the realtime views
// cannot answer. SQLStore is the default; a column store (ClickHouse, say)
// can implement it for volumes SQL does not carry.
type DetailStore interface {
	// Insert stores anchors that passed Validate, skipping any already
	// stored under the same (messageId, eventId), and returns how many it
	// added. It must be idempotent: the writer repeats a batch whose
	// acknowledgement was lost.
	Insert(ctx context.Context, anchors []push.Anchor) (int64, error)
	// Events returns the events q selects, ordered by time, then arrival;
	// at most q.Limit, the latest ones. No match is an empty, non-nil slice.
	Events(ctx context.Context, q Query) ([]Event, error)
	// Counts returns, per businessId among ids, how many events it has per
	// state; a businessId without events is absent.
	Counts(ctx context.Context, ids ...string) (map[string]map[string]int64, error)
	// Prune deletes the events older than before and returns how many.
	Prune(ctx context.Context, before time.Time) (int64, error)
}

// Query selects events by message, by receiver or by both, optionally
// within [From, To). Limit must be positive.
type Query struct {
	MessageID string
	Receiver  string
	From, To  time.Time
	Limit     int
}
