package trace

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/waypost/waypost/internal/push"
)

// Sources of an answer, as the API reports them.
const (
	SourceRealtime = "realtime"
	SourceDetail   = "detail"
)

// maxZoneOffset is the earliest a businessId's day can start, relative to
// that date at UTC midnight: the day of a template in UTC+14.
const maxZoneOffset = 14 * time.Hour

// Reader answers the trace queries from the realtime views when they can
// vouch for their answer, and from the detail store otherwise (or when the
// kv store fails).
type Reader struct {
	views *Views // nil: the detail store only
	store DetailStore
	limit int
	log   *slog.Logger
}

// NewReader returns a Reader; views may be nil, logger too. limit bounds
// the events one answer holds (the latest ones).
func NewReader(views *Views, store DetailStore, limit int, logger *slog.Logger) *Reader {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if limit <= 0 {
		limit = 1000
	}
	return &Reader{views: views, store: store, limit: limit, log: logger}
}

// Message returns the events of a message and where they came from.
func (r *Reader) Message(ctx context.Context, id string) ([]Event, string, error) {
	if r.views != nil {
		evs, ok, err := r.views.Message(ctx, id, r.limit)
		if err != nil {
			r.log.WarnContext(ctx, "trace: realtime view failed; answering from the detail store", "messageId", id, "err", err)
		}
		if ok {
			return evs, SourceRealtime, nil
		}
	}
	evs, err := r.store.Events(ctx, Query{MessageID: id, Limit: r.limit})
	return evs, SourceDetail, err
}

// MessageReceiver returns the events of one receiver of a message, however
// many events the message has, and whether the message has any event at
// all.
func (r *Reader) MessageReceiver(ctx context.Context, id, rcv string) ([]Event, bool, error) {
	if r.views != nil {
		evs, ok, err := r.views.Message(ctx, id, r.views.cfg.MessageMaxEvents)
		if err != nil {
			r.log.WarnContext(ctx, "trace: realtime view failed; answering from the detail store", "messageId", id, "err", err)
		}
		if ok {
			return slices.DeleteFunc(evs, func(e Event) bool { return e.Receiver != rcv }), true, nil
		}
	}
	evs, err := r.store.Events(ctx, Query{MessageID: id, Receiver: rcv, Limit: r.limit})
	if err != nil || len(evs) > 0 {
		return evs, len(evs) > 0, err
	}
	other, err := r.store.Events(ctx, Query{MessageID: id, Limit: 1})
	return evs, len(other) > 0, err
}

// Receiver returns the events of rcv on the day [start, end).
func (r *Reader) Receiver(ctx context.Context, rcv string, start, end time.Time) ([]Event, string, error) {
	if r.views != nil {
		evs, ok, err := r.views.Receiver(ctx, rcv, start, r.limit)
		if err != nil {
			r.log.WarnContext(ctx, "trace: realtime view failed; answering from the detail store", "receiver", rcv, "err", err)
		}
		if ok {
			return evs, SourceRealtime, nil
		}
	}
	evs, err := r.store.Events(ctx, Query{Receiver: rcv, From: start, To: end, Limit: r.limit})
	return evs, SourceDetail, err
}

// TemplateDay is the answer of the template query.
type TemplateDay struct {
	BusinessID string           `json:"businessId"`
	Counts     map[string]int64 `json:"counts"`
	Funnel     Funnel           `json:"funnel"`
	Source     string           `json:"source"`
}

// Template counts the events of a template on a date (yyyyMMdd in the
// template's zone, as its businessIds embed it). The trace does not know a
// template's kind, so it looks at both kinds' businessIds and reports the
// one with events — the realtime one when neither (or both) has.
func (r *Reader) Template(ctx context.Context, templateID int64, date time.Time) (TemplateDay, error) {
	ids := []string{
		push.BusinessID(push.KindRealtime, templateID, date, date.Location()),
		push.BusinessID(push.KindScheduled, templateID, date, date.Location()),
	}
	y, m, d := date.Date()
	dayStart := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Add(-maxZoneOffset)
	counts := map[string]map[string]int64{}
	source := map[string]string{}
	var missing []string
	for _, id := range ids {
		if r.views != nil {
			c, ok, err := r.views.Counts(ctx, id, dayStart)
			if err != nil {
				r.log.WarnContext(ctx, "trace: realtime view failed; answering from the detail store", "businessId", id, "err", err)
			}
			if ok {
				counts[id], source[id] = c, SourceRealtime
				continue
			}
		}
		missing = append(missing, id)
	}
	if len(missing) > 0 {
		stored, err := r.store.Counts(ctx, missing...)
		if err != nil {
			return TemplateDay{}, err
		}
		for _, id := range missing {
			counts[id], source[id] = stored[id], SourceDetail
		}
	}
	out := TemplateDay{BusinessID: ids[0], Counts: zeroCounts()}
	if len(counts[ids[0]]) == 0 && len(counts[ids[1]]) > 0 {
		out.BusinessID = ids[1]
	}
	for state, n := range counts[out.BusinessID] {
		out.Counts[state] = n
	}
	out.Funnel = NewFunnel(out.Counts)
	out.Source = source[out.BusinessID]
	return out, nil
}
