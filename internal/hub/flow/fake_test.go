package flow

import (
	"context"
	"time"

	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/hub/downstream"
)

// call is one canned answer of the fake: after delay, err or the value.
type call struct {
	delay time.Duration
	err   error
}

// fakeDS is a downstream.Client with canned answers and delays, for tests
// inside a synctest bubble (the delays pass on the bubble's clock).
type fakeDS struct {
	station  hub.Station
	waybill  hub.Waybill
	route    []string
	plan     hub.SortPlan
	billing  hub.BillingVerdict
	delivery hub.DeliveryStatus
	calls    map[string]call // by method name
}

func newFakeDS() *fakeDS {
	return &fakeDS{
		station: hub.Station{Code: "XXSC01", Market: "XX", Kind: hub.StationSortCentre, Active: true, ExceptionChute: "X01"},
		waybill: hub.Waybill{No: "WPXX0000000001", Market: "XX", Origin: "XXFM01", Destination: "XXLM01",
			Type: "standard", Service: "standard", Currency: "XXD"},
		route: []string{"XXFM01", "XXSC01", "XXLM01"},
		plan: hub.SortPlan{Station: "XXSC01", Version: 3, ExceptionChute: "X09",
			Rules: []hub.SortRule{{Priority: 1, Destination: "XXLM01", NextHop: "XXLM01", Chute: "C07"}}},
		billing:  hub.BillingVerdict{OK: true},
		delivery: hub.DeliveryStatus{Status: hub.DeliveryInTransit},
		calls:    map[string]call{},
	}
}

func (f *fakeDS) answer(ctx context.Context, method string) error {
	c := f.calls[method]
	if c.delay > 0 {
		t := time.NewTimer(c.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return hub.Refuse(hub.CodeDownstreamTimeout, "%s did not answer in time", method)
		}
	}
	return c.err
}

func (f *fakeDS) Station(ctx context.Context, code string) (hub.Station, error) {
	if err := f.answer(ctx, "station"); err != nil {
		return hub.Station{}, err
	}
	return f.station, nil
}

func (f *fakeDS) Waybill(ctx context.Context, no string) (hub.Waybill, error) {
	if err := f.answer(ctx, "waybill"); err != nil {
		return hub.Waybill{}, err
	}
	return f.waybill, nil
}

func (f *fakeDS) Route(ctx context.Context, origin, destination string) ([]string, error) {
	if err := f.answer(ctx, "route"); err != nil {
		return nil, err
	}
	return f.route, nil
}

func (f *fakeDS) SortPlan(ctx context.Context, station string) (hub.SortPlan, error) {
	if err := f.answer(ctx, "plan"); err != nil {
		return hub.SortPlan{}, err
	}
	return f.plan, nil
}

func (f *fakeDS) CheckBilling(ctx context.Context, waybill, station, operation string) (hub.BillingVerdict, error) {
	if err := f.answer(ctx, "billing"); err != nil {
		return hub.BillingVerdict{}, err
	}
	return f.billing, nil
}

func (f *fakeDS) DeliveryStatus(ctx context.Context, waybill string) (hub.DeliveryStatus, error) {
	if err := f.answer(ctx, "delivery"); err != nil {
		return hub.DeliveryStatus{}, err
	}
	return f.delivery, nil
}

func (f *fakeDS) Trip(context.Context, string) (hub.Trip, error) { return hub.Trip{}, nil }

func (f *fakeDS) CreatePreAlert(context.Context, hub.PreAlert) (string, error) { return "", nil }

var _ downstream.Client = (*fakeDS)(nil)
