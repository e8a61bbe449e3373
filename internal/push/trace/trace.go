// Package trace is push's full-link tracing. Every stage of push publishes
// anchors (push.Anchor) to push.TraceTopic; this package consumes them twice,
// each through its own consumer group of the `trace` role:
//
//   - the aggregator (ViewsGroup) keeps realtime views on the kv store: per
//     messageId its event list, per receiver the list of the day, per
//     businessId a count per state (Views);
//   - the detail writer (DetailGroup) stores every event in a DetailStore,
//     SQL by default (SQLStore), pruned by age (Pruner).
//
// The API answers the trace queries from the views and, when a view has
// expired or cannot vouch for being complete, from the detail store; it also
// takes delivery receipts, recorded as delivered/undelivered anchors.
// Both consumers are idempotent, so a redelivered or replayed batch never
// counts twice.
package trace

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/waypost/waypost/internal/push"
)

// Consumer groups on push.TraceTopic. DetailGroup keeps the name of the
// first trace consumer, which wrote the same SQL table.
const (
	ViewsGroup  = "push-trace-views"
	DetailGroup = "push-trace"
)

// ErrInvalidAnchor: an anchor misses a required field or has one too long
// for the schema; retrying cannot store it.
var ErrInvalidAnchor = errors.New("trace: invalid anchor")

// Field limits, those of the detail store's columns.
const (
	maxEventID    = 191
	maxMessageID  = 64
	maxBusinessID = 32
	maxReceiver   = 191
	maxState      = 32
	maxDetail     = 1000 // characters; longer details are cut
)

// Event is one anchor as the query API reports it.
type Event struct {
	MessageID  string    `json:"messageId"`
	Receiver   string    `json:"receiver"`
	State      string    `json:"state"`
	At         time.Time `json:"at"`
	BusinessID string    `json:"businessId"`
	Detail     string    `json:"detail"`
}

// Validate reports whether a can be traced, and cuts an over-long detail.
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
	case a.At.IsZero():
		return fmt.Errorf("%w: at is missing", ErrInvalidAnchor)
	}
	if len(a.Detail) > maxDetail && utf8.RuneCountInString(a.Detail) > maxDetail {
		a.Detail = string([]rune(a.Detail)[:maxDetail])
	}
	return nil
}

// States lists every anchor state: the access layer's, the handler's rule
// stages in pipeline order, the send outcomes, then the later ones.
func States() []string {
	return []string{push.StateReceived, push.StateInvalidReceiver, push.StateDiscarded,
		push.StateQuietDropped, push.StateQuietDelayed, push.StateContentDeduplicated,
		push.StateFrequencyCapped, push.StateNotWhitelisted, push.StateSent, push.StateSendFailed,
		push.StateDelivered, push.StateUndelivered, push.StateRecalled}
}

// zeroCounts has every known state at zero, so dashboards see stable keys.
func zeroCounts() map[string]int64 {
	m := make(map[string]int64, len(States()))
	for _, s := range States() {
		m[s] = 0
	}
	return m
}

// dayOf is the start and end of the day holding t in loc.
func dayOf(t time.Time, loc *time.Location) (start, end time.Time) {
	t = t.In(loc)
	start = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	return start, start.AddDate(0, 0, 1)
}

// eventKey is an event's identity, the detail store's key.
type eventKey struct{ msg, ev string }

// deduper drops events repeated under the same (messageId, eventId),
// keeping the first, in place; it keeps its map from one call to the next
// so a steady stream of batches does not rebuild it. Not safe for
// concurrent use.
type deduper struct {
	seen map[eventKey]struct{}
}

func (d *deduper) dedupe(anchors []push.Anchor) []push.Anchor {
	if d.seen == nil {
		d.seen = make(map[eventKey]struct{}, len(anchors))
	}
	defer clear(d.seen) // nor pin the batch's strings until the next
	out := anchors[:0]
	for i := range anchors {
		a := &anchors[i]
		k := eventKey{a.MessageID, a.EventID}
		if _, dup := d.seen[k]; dup {
			continue
		}
		d.seen[k] = struct{}{}
		out = append(out, *a)
	}
	return out
}

// hasDuplicates reports whether two anchors share (messageId, eventId).
func (d *deduper) hasDuplicates(anchors []push.Anchor) bool {
	if d.seen == nil {
		d.seen = make(map[eventKey]struct{}, len(anchors))
	}
	defer clear(d.seen)
	for i := range anchors {
		a := &anchors[i]
		k := eventKey{a.MessageID, a.EventID}
		if _, dup := d.seen[k]; dup {
			return true
		}
		d.seen[k] = struct{}{}
	}
	return false
}
