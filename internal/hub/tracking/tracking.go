// Package tracking delivers the hub's tracking events to the order centre:
// the Relay moves events from the transactional outbox table (hub_outbox,
// written in the same transaction as each work order) to the queue topic
// hub.TrackingTopic, and the OrderFeed consumes that topic into the order
// centre's AppendTrack. Both are at least once; events carry an eventId so
// the order centre records each once, and both keep each waybill's events in
// order. See docs/tracking.md.
package tracking

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/platform/metrics"
	"github.com/waypost/waypost/internal/platform/sqldb"
)

// OutboxTable is the table the relay drains; the hub's migration creates it.
const OutboxTable = "hub_outbox"

// ContentType is the content-type header of every published event.
const ContentType = "application/json"

// maxWaybillLen is the width of hub_outbox.waybill.
const maxWaybillLen = 64

// ErrInvalidEvent is returned by Enqueue for an event the order centre could
// never accept (no event id, waybill or code, or no time).
var ErrInvalidEvent = errors.New("tracking: invalid event")

// Execer is what Enqueue writes through: the caller's *sql.Tx (or a *sql.DB
// when there is no work order to commit with).
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Enqueue writes ev to the outbox through ex, which should be the transaction
// that also writes ev's work order so that both commit or neither does. now
// is the row's created_at; call Relay.Notify after the commit to publish at
// once instead of at the next poll.
func Enqueue(ctx context.Context, ex Execer, d sqldb.Dialect, ev hub.TrackingEvent, now time.Time) error {
	if err := validate(ev); err != nil {
		return err
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("tracking: encode event %s: %w", ev.EventID, err)
	}
	q := sqldb.Rebind(d, "INSERT INTO "+OutboxTable+" (waybill, payload, created_at) VALUES (?, ?, ?)")
	if _, err := ex.ExecContext(ctx, q, ev.Waybill, string(payload), now.UnixMilli()); err != nil {
		return fmt.Errorf("tracking: enqueue event %s of %s: %w", ev.EventID, ev.Waybill, err)
	}
	return nil
}

// validate checks what the order centre requires of every event.
func validate(ev hub.TrackingEvent) error {
	switch {
	case ev.EventID == "":
		return fmt.Errorf("%w: no eventId", ErrInvalidEvent)
	case ev.Waybill == "" || len(ev.Waybill) > maxWaybillLen:
		return fmt.Errorf("%w: event %s: waybill must be 1..%d characters", ErrInvalidEvent, ev.EventID, maxWaybillLen)
	case ev.Code == "":
		return fmt.Errorf("%w: event %s: no code", ErrInvalidEvent, ev.EventID)
	case ev.At.IsZero():
		return fmt.Errorf("%w: event %s: no time", ErrInvalidEvent, ev.EventID)
	}
	return nil
}

// register registers c, or returns the collector of the same description
// already registered (a second relay or feed in one process shares it).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	c, err := metrics.Register(reg, c)
	if err != nil {
		return c, fmt.Errorf("tracking: register metrics: %w", err)
	}
	return c, nil
}

// expBackoff is lo doubled for each attempt after the first, capped at hi.
func expBackoff(lo, hi time.Duration, attempt int) time.Duration {
	d := lo
	for i := 1; i < attempt && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

// jitter draws uniformly from the upper half of d, so that instances that
// failed together do not retry together.
func jitter(d time.Duration) time.Duration {
	half := d / 2
	return half + rand.N(half+1)
}
