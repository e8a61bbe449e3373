package tracking_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/hub/tracking"
	orderv1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/order/v1"
)

func newFeed(t *testing.T, orders *fakeOrders, cfg tracking.FeedConfig) (*fakeQueue, *tracking.OrderFeed, *prometheus.Registry) {
	t.Helper()
	q := &fakeQueue{}
	reg := prometheus.NewRegistry()
	f, err := tracking.NewOrderFeed(q, orders, cfg, nil, reg)
	require.NoError(t, err)
	require.NoError(t, f.Start(testCtx(t)))
	t.Cleanup(func() { require.NoError(t, f.Close(context.Background())) })
	return q, f, reg
}

func TestOrderFeedSettlesEachDelivery(t *testing.T) {
	at := time.Date(2026, 11, 29, 8, 30, 0, 0, time.UTC)
	ev := hub.TrackingEvent{EventID: "wo-1", Waybill: "WPSG0000000001", Code: "EDD", Kind: "inbound",
		Station: "SGSC01", At: at, Operator: "op-9", Device: "pda-3", Reason: "", Description: ""}
	good, err := json.Marshal(ev)
	require.NoError(t, err)
	unavailable := status.Error(codes.Unavailable, "order centre down")
	fast := tracking.FeedConfig{RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond, RetryWindow: time.Minute}

	tests := []struct {
		name       string
		value      []byte
		orders     *fakeOrders
		cfg        tracking.FeedConfig
		wantAck    bool
		wantCalls  int
		wantResult string
	}{
		{name: "appended", value: good, orders: &fakeOrders{}, cfg: fast, wantAck: true, wantCalls: 1, wantResult: "appended"},
		{name: "duplicate", value: good, orders: &fakeOrders{resp: &orderv1.AppendTrackResponse{Duplicates: 1}},
			cfg: fast, wantAck: true, wantCalls: 1, wantResult: "duplicate"},
		{name: "invalid json is poison", value: []byte("{not json"), orders: &fakeOrders{}, cfg: fast,
			wantAck: true, wantResult: "poison"},
		{name: "event without id is poison", value: []byte(`{"waybill":"WPSG1","code":"EDD","at":"2026-11-29T08:00:00Z"}`),
			orders: &fakeOrders{}, cfg: fast, wantAck: true, wantResult: "poison"},
		{name: "refused by the order centre", value: good,
			orders: &fakeOrders{errs: []error{status.Error(codes.InvalidArgument, "bad code")}},
			cfg:    fast, wantAck: true, wantCalls: 1, wantResult: "rejected"},
		{name: "unknown waybill", value: good,
			orders: &fakeOrders{errs: []error{status.Error(codes.NotFound, "unknown waybill")}},
			cfg:    fast, wantAck: true, wantCalls: 1, wantResult: "rejected"},
		{name: "transient errors are retried in place", value: good,
			orders: &fakeOrders{errs: []error{unavailable, status.Error(codes.DeadlineExceeded, "slow")}},
			cfg:    fast, wantAck: true, wantCalls: 3, wantResult: "appended"},
		{name: "past the retry window it is nacked", value: good, orders: &fakeOrders{always: unavailable},
			cfg:     tracking.FeedConfig{RetryMin: 10 * time.Millisecond, RetryWindow: 25 * time.Millisecond},
			wantAck: false, wantResult: "nacked"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, _, reg := newFeed(t, tc.orders, tc.cfg)
			a := deliver(t, q, tc.value, 2)
			if tc.wantAck {
				require.Equal(t, 1, a.acked)
				require.Zero(t, a.nacked)
			} else {
				require.Zero(t, a.acked)
				require.Equal(t, 1, a.nacked)
				require.Equal(t, 20*time.Millisecond, a.delay, "the nack delay grows with the attempt")
			}
			if tc.wantCalls > 0 {
				require.Equal(t, tc.wantCalls, tc.orders.calls())
			}
			require.Equal(t, 1.0, labelled(t, reg, "waypost_hub_tracking_feed_events_total", "result", tc.wantResult))
		})
	}

	t.Run("mapping", func(t *testing.T) {
		orders := &fakeOrders{}
		q, _, _ := newFeed(t, orders, fast)
		require.Equal(t, "hub.tracking", q.subscribe.Topic)
		require.Equal(t, tracking.DefaultFeedGroup, q.subscribe.Group)
		deliver(t, q, good, 1)
		withReason := ev
		withReason.EventID, withReason.Code, withReason.Reason, withReason.Description = "wo-2", "HEX", "misroute", "Wrong bag"
		raw, err := json.Marshal(withReason)
		require.NoError(t, err)
		deliver(t, q, raw, 1)

		require.Len(t, orders.reqs, 2)
		got := orders.reqs[0].GetEvents()
		require.Len(t, got, 1)
		require.Equal(t, "wo-1", got[0].GetEventId())
		require.Equal(t, "WPSG0000000001", got[0].GetWaybillNo())
		require.Equal(t, "EDD", got[0].GetEventCode())
		require.Equal(t, "SGSC01", got[0].GetStation())
		require.Equal(t, at, got[0].GetEventTime().AsTime())
		require.Equal(t, "op-9", got[0].GetOperator())
		require.Equal(t, "Arrived at sorting centre", got[0].GetDescription(), "default description from the code table")
		second := orders.reqs[1].GetEvents()[0]
		require.Equal(t, "misroute", second.GetReasonCode())
		require.Equal(t, "Wrong bag", second.GetDescription())
	})
}

func TestOrderFeedCloseNacksARetryingDelivery(t *testing.T) {
	orders := &fakeOrders{always: status.Error(codes.Unavailable, "down")}
	q, f, _ := newFeed(t, orders, tracking.FeedConfig{RetryMin: time.Hour, RetryMax: time.Hour, RetryWindow: 24 * time.Hour})
	ev, err := json.Marshal(hub.TrackingEvent{EventID: "wo-1", Waybill: "WPSG1", Code: "EDD", At: t0})
	require.NoError(t, err)
	settled := make(chan *acks, 1)
	go func() { settled <- deliver(t, q, ev, 1) }()
	eventually(t, func() bool { return orders.calls() == 1 }, "first call made")
	require.NoError(t, f.Close(testCtx(t)))
	a := <-settled
	require.Equal(t, 1, a.nacked, "closing hands the delivery back instead of waiting an hour")
	require.ErrorIs(t, f.Start(testCtx(t)), tracking.ErrFeedClosed)
}

func TestOrderFeedRunReturnsOnClose(t *testing.T) {
	q := &fakeQueue{}
	f, err := tracking.NewOrderFeed(q, &fakeOrders{}, tracking.FeedConfig{Group: "custom-group"}, nil, nil)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- f.Run(context.Background()) }()
	eventually(t, func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.handler != nil
	}, "subscribed")
	require.Equal(t, "custom-group", q.subscribe.Group)
	require.NoError(t, f.Close(testCtx(t)))
	require.NoError(t, <-done)

	_, err = tracking.NewOrderFeed(nil, &fakeOrders{}, tracking.FeedConfig{}, nil, nil)
	require.Error(t, err)
}
