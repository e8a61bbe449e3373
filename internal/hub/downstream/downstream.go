// Package downstream is the hub's view of the five systems it depends on —
// order centre, basic data, billing, delivery status and linehaul — behind
// one small interface, with a gRPC implementation that bounds every call by
// a deadline, turns failures into the hub's refusal codes, and shares and
// caches the basic data lookups (stations, routes, sort plans) until basic
// data announces a change.
package downstream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/waypost/waypost/internal/hub"
)

// Client is what the hub's operations ask of the downstream systems. Every
// error it returns for a caller-visible condition is a *hub.Refusal.
type Client interface {
	// Station returns a station; refusal unknown_station when it does not exist.
	Station(ctx context.Context, code string) (hub.Station, error)
	// Waybill returns a waybill; refusal unknown_waybill when it does not exist.
	Waybill(ctx context.Context, no string) (hub.Waybill, error)
	// Route returns the stations from origin to destination, both included.
	Route(ctx context.Context, origin, destination string) ([]string, error)
	// SortPlan returns the current sort plan of a station.
	SortPlan(ctx context.Context, station string) (hub.SortPlan, error)
	// CheckBilling asks billing whether the parcel may move on.
	CheckBilling(ctx context.Context, waybill, station, operation string) (hub.BillingVerdict, error)
	// DeliveryStatus returns where the parcel stands in its delivery life.
	DeliveryStatus(ctx context.Context, waybill string) (hub.DeliveryStatus, error)
	// Trip returns a linehaul trip; refusal unknown_trip when it does not exist.
	Trip(ctx context.Context, id string) (hub.Trip, error)
	// CreatePreAlert announces a trip's load and returns the pre-alert id; a
	// repeated RequestID returns the same pre-alert.
	CreatePreAlert(ctx context.Context, pa hub.PreAlert) (string, error)
}

// ErrLookupPanicked is returned to every caller waiting on a basic data
// lookup whose fetch panicked; the panic is logged with its stack and the
// process carries on.
var ErrLookupPanicked = errors.New("downstream: lookup panicked")

// Config tunes the gRPC client.
type Config struct {
	// CallTimeout bounds every downstream call; the caller's deadline, when
	// earlier, wins. A station, route or sort plan lookup shared by several
	// callers runs for up to CallTimeout even when the caller that started
	// it gives up sooner. Default 300ms.
	CallTimeout time.Duration
	// StationTTL is how long a station, route or sort plan lookup is
	// reused. Watch drops an entry as soon as basic data announces a change
	// to it; the TTL bounds staleness when the change stream is down.
	// Default 5s.
	StationTTL time.Duration
	// WatchRetryMin and WatchRetryMax bound the backoff with which Watch
	// resubscribes after losing the change stream: it doubles from the
	// minimum to the maximum, with jitter. Defaults 200ms and 10s.
	WatchRetryMin time.Duration
	WatchRetryMax time.Duration
	// BatchInFlight is how many waybill calls run at once before further
	// lookups queue and share one BatchGetWaybills call (see batcher);
	// default 1. Negative: never batch, every lookup its own call.
	BatchInFlight int
	// BatchMax bounds the waybills of one batch call; default 64, at most
	// 500 (the order centre's limit).
	BatchMax int
	// BatchWait is the longest a queued lookup waits for a running call to
	// end before it sends the queue itself; default 1ms.
	BatchWait time.Duration
	// Now is the clock of the caches; default time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.CallTimeout <= 0 {
		c.CallTimeout = 300 * time.Millisecond
	}
	if c.StationTTL <= 0 {
		c.StationTTL = 5 * time.Second
	}
	if c.WatchRetryMin <= 0 {
		c.WatchRetryMin = 200 * time.Millisecond
	}
	if c.WatchRetryMax <= 0 {
		c.WatchRetryMax = 10 * time.Second
	}
	if c.WatchRetryMax < c.WatchRetryMin {
		c.WatchRetryMax = c.WatchRetryMin
	}
	if c.BatchInFlight == 0 {
		c.BatchInFlight = 1
	}
	if c.BatchMax <= 0 {
		c.BatchMax = 64
	}
	c.BatchMax = min(c.BatchMax, maxWaybillBatch)
	if c.BatchWait <= 0 {
		c.BatchWait = time.Millisecond
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// translate turns a gRPC error of service into a refusal where the caller
// can act on it; notFound is the refusal code for codes.NotFound.
func translate(ctx context.Context, service, notFound string, err error) error {
	if err == nil {
		return nil
	}
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.DeadlineExceeded:
		return &hub.Refusal{Code: hub.CodeDownstreamTimeout, Message: fmt.Sprintf("%s did not answer in time", service)}
	case codes.Unavailable, codes.ResourceExhausted, codes.Aborted:
		return &hub.Refusal{Code: hub.CodeDownstreamUnavailable, Message: fmt.Sprintf("%s is unavailable: %s", service, st.Message())}
	case codes.NotFound:
		if notFound != "" {
			return &hub.Refusal{Code: notFound, Message: st.Message()}
		}
	case codes.Canceled:
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return &hub.Refusal{Code: hub.CodeDownstreamTimeout, Message: fmt.Sprintf("%s did not answer in time", service)}
		}
		return fmt.Errorf("%s: %w", service, context.Canceled)
	}
	return fmt.Errorf("%s: %w", service, err)
}
