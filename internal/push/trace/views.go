package trace

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/waypost/waypost/internal/platform/kv"
	"github.com/waypost/waypost/internal/push"
)

// Defaults of ViewConfig.
const (
	DefaultMessageTTL        = 72 * time.Hour
	DefaultMessageMaxEvents  = 2000
	DefaultReceiverMaxEvents = 2000
	DefaultCountsTTL         = 30 * 24 * time.Hour
	DefaultEventIDTTL        = 72 * time.Hour
)

// viewSkew is the clock difference between producers and aggregators that
// the completeness check tolerates (see Views).
const viewSkew = time.Minute

// Key layout of the views on the kv store.
const (
	keyMessage  = "trace:m:"    // + messageId: list of events
	keyReceiver = "trace:r:"    // + yyyyMMdd + ":" + receiver: list of events
	keyCounts   = "trace:b:"    // + businessId: hash state -> count
	keySince    = "trace:since" // unix µs from which the views are complete
)

// ViewConfig tunes the realtime views; zero fields take the defaults.
type ViewConfig struct {
	// Location is the zone of a receiver's day; default UTC.
	Location *time.Location
	// MessageTTL is how long a message's list lives after its last event.
	MessageTTL time.Duration
	// MessageMaxEvents and ReceiverMaxEvents cap the lists; a full list may
	// have lost events, so its queries are answered from the detail store.
	MessageMaxEvents  int
	ReceiverMaxEvents int
	// CountsTTL is how long a businessId's counts live after its last event.
	CountsTTL time.Duration
	// EventIDTTL is how long an event id is remembered so that its
	// redelivery is not counted again; it must exceed the longest time an
	// anchor can take to come back (a redelivery, a producer's retry).
	EventIDTTL time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (c *ViewConfig) defaults() {
	if c.Location == nil {
		c.Location = time.UTC
	}
	if c.MessageTTL <= 0 {
		c.MessageTTL = DefaultMessageTTL
	}
	if c.MessageMaxEvents <= 0 {
		c.MessageMaxEvents = DefaultMessageMaxEvents
	}
	if c.ReceiverMaxEvents <= 0 {
		c.ReceiverMaxEvents = DefaultReceiverMaxEvents
	}
	if c.CountsTTL <= 0 {
		c.CountsTTL = DefaultCountsTTL
	}
	if c.EventIDTTL <= 0 {
		c.EventIDTTL = DefaultEventIDTTL
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Views are the realtime views on the kv store: per messageId its events
// (list, MessageTTL), per receiver and day its events (list, until the end
// of that day in Location), per businessId a count per state (hash,
// CountsTTL).
//
// Write is idempotent: counts go through kv.HashIncrOnce keyed by the
// event, and lists, which may hold a repeated event after a redelivery, are
// deduplicated when read.
//
// A view answers only when it can vouch for being complete. Every Write
// makes sure the kv store holds the instant from which it has seen every
// anchor (the first Write's, kept forever); an in-process store that
// restarted, or a Redis that was flushed, loses it, and the next Write sets
// a later one. Queries about anything that may have happened before it
// (less viewSkew) go to the detail store.
type Views struct {
	kv  kv.Store
	cfg ViewConfig
}

// NewViews returns the views on store.
func NewViews(store kv.Store, cfg ViewConfig) *Views {
	cfg.defaults()
	return &Views{kv: store, cfg: cfg}
}

// viewEvent is an event as the lists store it: short names, because there
// are two copies of every event in the kv store.
type viewEvent struct {
	EventID    string `json:"e"`
	MessageID  string `json:"m"`
	BusinessID string `json:"b,omitempty"`
	Receiver   string `json:"r"`
	State      string `json:"s"`
	At         int64  `json:"t"` // unix µs
	Detail     string `json:"d,omitempty"`
}

func messageKey(id string) string { return keyMessage + id }

func receiverKey(rcv string, day time.Time) string {
	return keyReceiver + day.Format("20060102") + ":" + rcv
}

func countsKey(businessID string) string { return keyCounts + businessID }

// ownedListPusher is a kv store that can keep the values of a
// ListPushBatch without copying them (memkv); Write hands its buffer over.
type ownedListPusher interface {
	ListPushBatchOwned(ctx context.Context, reqs []kv.ListPushRequest) error
}

// Write adds a batch of anchors (that passed Validate) to the views: the
// lists and the counts, one batched kv call each, at the same time.
func (v *Views) Write(ctx context.Context, anchors []push.Anchor) error {
	if len(anchors) == 0 {
		return nil
	}
	now := v.cfg.Now()
	if _, err := v.kv.SetNX(ctx, keySince, []byte(strconv.FormatInt(now.UnixMicro(), 10)), 0); err != nil {
		return fmt.Errorf("trace views: mark: %w", err)
	}
	reqs, incrs := v.batch(anchors, now)
	// The lists and the counts are independent (each write is idempotent
	// on its own), so on a networked store their round trips overlap.
	countsErr := make(chan error, 1)
	go func() {
		_, err := v.kv.HashIncrOnce(ctx, incrs)
		countsErr <- err
	}()
	var listErr error
	if o, ok := v.kv.(ownedListPusher); ok {
		// Nothing else refers to the batch's buffer once it is built.
		listErr = o.ListPushBatchOwned(ctx, reqs)
	} else {
		listErr = v.kv.ListPushBatch(ctx, reqs)
	}
	if err := <-countsErr; err != nil {
		return fmt.Errorf("trace views: counts: %w", err)
	}
	if listErr != nil {
		return fmt.Errorf("trace views: lists: %w", listErr)
	}
	return nil
}

// since returns the instant from which the views are complete, or false when
// no aggregator has marked the store.
func (v *Views) since(ctx context.Context) (time.Time, bool, error) {
	b, err := v.kv.Get(ctx, keySince)
	switch {
	case errors.Is(err, kv.ErrNotFound):
		return time.Time{}, false, nil
	case err != nil:
		return time.Time{}, false, fmt.Errorf("trace views: since: %w", err)
	}
	us, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("trace views: since %q: %w", b, err)
	}
	return time.UnixMicro(us).Add(viewSkew), true, nil
}

// Message returns the latest limit events of a message, and false when the
// view cannot answer: it is missing, full, or may miss anchors from before
// the views' start — it holds no access anchor (received or
// invalid_receiver, a message's first) from after it.
func (v *Views) Message(ctx context.Context, id string, limit int) ([]Event, bool, error) {
	since, ok, err := v.since(ctx)
	if err != nil || !ok {
		return nil, false, err
	}
	evs, full, err := v.list(ctx, messageKey(id), v.cfg.MessageMaxEvents)
	if err != nil || full || len(evs) == 0 {
		return nil, false, err
	}
	complete := false
	for _, e := range evs {
		if (e.State == push.StateReceived || e.State == push.StateInvalidReceiver) && !e.At.Before(since) {
			complete = true
			break
		}
	}
	if !complete {
		return nil, false, nil
	}
	return latest(evs, limit), true, nil
}

// Receiver returns the latest limit events of rcv on the day starting at
// day (midnight in Location), and false when the view cannot answer: the
// day started before the views did, the list is missing (expired) or full.
func (v *Views) Receiver(ctx context.Context, rcv string, day time.Time, limit int) ([]Event, bool, error) {
	since, ok, err := v.since(ctx)
	if err != nil || !ok || day.Before(since) {
		return nil, false, err
	}
	evs, full, err := v.list(ctx, receiverKey(rcv, day), v.cfg.ReceiverMaxEvents)
	if err != nil || full || len(evs) == 0 {
		return nil, false, err
	}
	return latest(evs, limit), true, nil
}

// Counts returns the counts per state of a businessId whose day starts at
// dayStart (the earliest instant it may have anchors), and false when the
// view cannot answer: that day started before the views did, or the hash is
// missing (expired, or no anchor at all).
func (v *Views) Counts(ctx context.Context, businessID string, dayStart time.Time) (map[string]int64, bool, error) {
	since, ok, err := v.since(ctx)
	if err != nil || !ok || dayStart.Before(since) {
		return nil, false, err
	}
	m, err := v.kv.HashGetAll(ctx, countsKey(businessID))
	if err != nil {
		return nil, false, fmt.Errorf("trace views: counts %s: %w", businessID, err)
	}
	if len(m) == 0 {
		return nil, false, nil
	}
	return m, true, nil
}

// list reads a list of events, dropping repeats of an event, and reports
// whether it is full.
func (v *Views) list(ctx context.Context, key string, maxLen int) ([]Event, bool, error) {
	raw, err := v.kv.ListRange(ctx, key, 0, -1)
	if err != nil {
		return nil, false, fmt.Errorf("trace views: read %s: %w", key, err)
	}
	if len(raw) >= maxLen {
		return nil, true, nil
	}
	seen := make(map[string]struct{}, len(raw))
	out := make([]Event, 0, len(raw))
	for _, b := range raw {
		var e viewEvent
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, false, fmt.Errorf("trace views: decode %s: %w", key, err)
		}
		id := e.MessageID + "\x00" + e.EventID
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		out = append(out, Event{MessageID: e.MessageID, Receiver: e.Receiver, State: e.State,
			At: time.UnixMicro(e.At).UTC(), BusinessID: e.BusinessID, Detail: e.Detail})
	}
	return out, false, nil
}

// latest orders events by time, then arrival, and keeps the last limit.
func latest(evs []Event, limit int) []Event {
	slices.SortStableFunc(evs, func(a, b Event) int { return cmp.Compare(a.At.UnixMicro(), b.At.UnixMicro()) })
	if len(evs) > limit {
		evs = evs[len(evs)-limit:]
	}
	return evs
}
