// Package ops is the hub's station operations — inbound, sort, pack, seal,
// handover, receive and unpack — in their sequential form: each asks the
// downstream systems what it needs one call after the other, then writes
// its work order, the state it changes and its tracking events in one
// transaction. Every scan is idempotent: a repeated scan answers what the
// first one answered and writes nothing.
package ops

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/hub/downstream"
	"github.com/waypost/waypost/internal/hub/store"
)

// Config tunes the operations.
type Config struct {
	// Now is the clock work orders are stamped with; default time.Now.
	Now func() time.Time
	// GroupCommit, when above 1, commits the work orders of up to that many
	// concurrent operations in one transaction (see group). Meant for
	// SQLite, whose writers take turns; 0 or 1: one transaction each.
	GroupCommit int
}

// Service runs the station operations.
type Service struct {
	st    *store.Store
	ds    downstream.Client
	now   func() time.Time
	log   *slog.Logger
	group *group // nil: one transaction per operation
}

// New returns the operations over a store and the downstream systems.
func New(st *store.Store, ds downstream.Client, cfg Config, logger *slog.Logger) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{st: st, ds: ds, now: cfg.Now, log: logger}
	if cfg.GroupCommit > 1 {
		s.group = &group{st: st, max: cfg.GroupCommit}
	}
	return s
}

// Store is the store the operations write to.
func (s *Service) Store() *store.Store { return s.st }

// Downstream is the downstream client the operations ask.
func (s *Service) Downstream() downstream.Client { return s.ds }

// attempt is one operation being tried: who did what to which thing, and
// the idempotency key that makes repeating it harmless.
type attempt struct {
	key       string
	kind      string
	station   string
	waybill   string
	container string
	operator  string
	device    string
}

// idemKey joins the parts of an idempotency key; long keys are hashed so
// they fit the indexed column.
func idemKey(parts ...string) string {
	k := strings.Join(parts, "|")
	if len(k) <= 150 {
		return k
	}
	sum := sha256.Sum256([]byte(k))
	return parts[0] + "|" + parts[1] + "|" + hex.EncodeToString(sum[:])
}

func newID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + strings.ToUpper(hex.EncodeToString(b[:]))
}

// replay decodes the answer of a work order already recorded under key into
// out and reports whether there was one.
func (s *Service) replay(ctx context.Context, key string, out any) (bool, error) {
	wo, err := s.st.WorkOrderByKey(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(wo.Response, out); err != nil {
		return false, fmt.Errorf("decode answer of work order %s: %w", wo.ID, err)
	}
	return true, nil
}

// applyFunc changes the state of one operation inside its transaction and
// fills the answer; it returns the tracking events to write, or a refusal.
type applyFunc func(ctx context.Context, tx *store.Tx, woID string, at time.Time) ([]hub.TrackingEvent, error)

// commit writes the work order of a, with what apply changed and the events
// it produced, in one transaction, and stores out (filled by apply) as the
// answer to replay. When another device won the race for the same key, the
// winner's answer is decoded into out instead.
func (s *Service) commit(ctx context.Context, a attempt, out any, apply applyFunc) error {
	woID, at := newID("WO"), s.now().UTC()
	err := s.inTx(ctx, func(tx *store.Tx) error {
		events, err := apply(ctx, tx, woID, at)
		if err != nil {
			return err
		}
		resp, err := json.Marshal(out)
		if err != nil {
			return fmt.Errorf("encode answer: %w", err)
		}
		// A device racing for the same key fails here on the UNIQUE
		// constraint (or, having waited for the winner's locks, was refused
		// by the state the winner left); either way its transaction rolls
		// back and it answers with the winner's work order below.
		if err := tx.InsertWorkOrder(ctx, store.WorkOrder{ID: woID, IdempotencyKey: a.key, Kind: a.kind,
			Waybill: a.waybill, Container: a.container, Station: a.station, Operator: a.operator, Device: a.device,
			At: at, Result: hub.ResultOK, Response: resp}); err != nil {
			return err
		}
		return s.writeEvents(ctx, tx, woID, events)
	})
	if err == nil {
		return nil
	}
	if ok, rerr := s.replay(ctx, a.key, out); rerr == nil && ok {
		return nil
	}
	if r, ok := hub.AsRefusal(err); ok {
		return s.refuse(ctx, a, r)
	}
	return fmt.Errorf("%s %s: %w", a.kind, a.waybill+a.container, err)
}

func (s *Service) writeEvents(ctx context.Context, tx *store.Tx, woID string, events []hub.TrackingEvent) error {
	for _, ev := range events {
		ev.EventID = woID
		if len(events) > 1 {
			ev.EventID = woID + ":" + ev.Waybill
		}
		if err := tx.AddEvent(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

// recorded reports whether a refusal is written as a refused work order.
// Refusals of malformed input, of things the hub has never heard of and of
// a downstream system's momentary trouble are not: they say nothing about a
// parcel's journey and would let any caller fill the history with noise.
func recorded(code string) bool {
	switch code {
	case hub.CodeInvalidBody, hub.CodeMalformedBarcode, hub.CodeUnknownWaybill, hub.CodeUnknownStation,
		hub.CodeUnknownContainer, hub.CodeUnknownTrip, hub.CodeDownstreamTimeout, hub.CodeDownstreamUnavailable:
		return false
	}
	return true
}

// refuse records a refused work order (with an HEX event for its waybill)
// when the refusal is worth recording, and returns the refusal. The refused
// work order has its own key per reason: repeating a scan that is refused
// for the same reason writes nothing new, while a scan refused before and
// accepted now (a hold released) goes through.
func (s *Service) refuse(ctx context.Context, a attempt, r *hub.Refusal) error {
	if !recorded(r.Code) {
		return r
	}
	woID, at := newID("WO"), s.now().UTC()
	err := s.st.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.InsertWorkOrder(ctx, store.WorkOrder{ID: woID, IdempotencyKey: a.key + "|refused|" + r.Code,
			Kind: a.kind, Waybill: a.waybill, Container: a.container, Station: a.station, Operator: a.operator,
			Device: a.device, At: at, Result: hub.ResultRefused, Reason: r.Code, Message: r.Message,
			Response: []byte("{}")}); err != nil {
			return err
		}
		if a.waybill == "" {
			return nil
		}
		return s.writeEvents(ctx, tx, woID, []hub.TrackingEvent{{Waybill: a.waybill, Code: hub.EventException,
			Kind: a.kind, Station: a.station, At: at, Operator: a.operator, Device: a.device, Reason: r.Code,
			Description: r.Message, Result: hub.ResultRefused, Container: a.container}})
	})
	if err != nil {
		if _, lerr := s.st.WorkOrderByKey(ctx, a.key+"|refused|"+r.Code); lerr != nil {
			s.log.WarnContext(ctx, "hub: record refusal", "kind", a.kind, "reason", r.Code, "err", err)
		}
	}
	return r
}

// event is a tracking event of attempt a about one waybill.
func (a attempt) event(waybill, code string, at time.Time) hub.TrackingEvent {
	return hub.TrackingEvent{Waybill: waybill, Code: code, Kind: a.kind, Station: a.station, At: at,
		Operator: a.operator, Device: a.device, Result: hub.ResultOK, Container: a.container}
}

// notFound turns store.ErrNotFound into a refusal with code.
func notFound(err error, code, format string, args ...any) error {
	if errors.Is(err, store.ErrNotFound) {
		return hub.Refuse(code, format, args...)
	}
	return err
}

// required refuses with invalid_body when any named field is empty.
func required(fields ...string) error {
	for i := 0; i+1 < len(fields); i += 2 {
		if strings.TrimSpace(fields[i+1]) == "" {
			return hub.Refuse(hub.CodeInvalidBody, "%s is required", fields[i])
		}
	}
	return nil
}

// barcode refuses a value that cannot be a waybill number or container id.
func barcode(what, v string) error {
	if !hub.ValidBarcode(v) {
		return hub.Refuse(hub.CodeMalformedBarcode, "%s %q is not a valid barcode", what, v)
	}
	return nil
}
