package tracking_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/hub/sandbox"
	"github.com/waypost/waypost/internal/hub/tracking"
	"github.com/waypost/waypost/internal/platform/grpcx"
	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
	orderv1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/order/v1"
)

// lossyOrders passes every AppendTrack to the real order centre but loses
// the answer to the first call of each event, as a dropped connection
// would, so the feed calls again and meets a duplicate.
type lossyOrders struct {
	orderv1.OrderServiceClient
	mu   sync.Mutex
	lost map[string]bool
}

func (l *lossyOrders) AppendTrack(ctx context.Context, req *orderv1.AppendTrackRequest, opts ...grpc.CallOption) (*orderv1.AppendTrackResponse, error) {
	resp, err := l.OrderServiceClient.AppendTrack(ctx, req, opts...)
	if err != nil {
		return resp, err
	}
	id := req.GetEvents()[0].GetEventId()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.lost[id] {
		l.lost[id] = true
		return nil, status.Error(codes.Unavailable, "connection reset after the call")
	}
	return resp, nil
}

// startSandbox serves the sandbox's order centre over gRPC on 127.0.0.1 and
// returns a client of it and its HTTP API.
func startSandbox(t *testing.T, db *sqldb.DB) (orderv1.OrderServiceClient, http.Handler) {
	t.Helper()
	svc, err := sandbox.New(testCtx(t), db, sandbox.Config{}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	srv, err := grpcx.Listen("127.0.0.1:0", nil)
	require.NoError(t, err)
	svc.RegisterGRPC(srv)
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	conn, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
		require.NoError(t, <-served)
	})
	mux := http.NewServeMux()
	svc.RegisterHTTP(mux)
	return orderv1.NewOrderServiceClient(conn), mux
}

// createWaybill creates a waybill through the sandbox's upstream HTTP API.
func createWaybill(t *testing.T, h http.Handler, from, to string) string {
	t.Helper()
	body, err := json.Marshal(map[string]any{
		"originStation": from, "destinationStation": to, "type": "standard", "service": "standard",
		"weightGrams": 1200, "codAmount": 0,
		"receiver": map[string]any{"name": "Tan Mei Ling", "phone": "+6591234567", "address": "10 Bedok North Ave 1"},
	})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/sandbox/v1/waybills", bytes.NewReader(body)))
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	var out struct {
		Waybill string `json:"waybill"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
	require.NotEmpty(t, out.Waybill)
	return out.Waybill
}

// journey is a parcel's events from first-mile hub to courier.
func journey(waybill string, at time.Time) []hub.TrackingEvent {
	steps := []struct{ kind, station, code string }{
		{"inbound", "SGFM01", hub.ArrivalCode(hub.StationFirstMile)},
		{"sort", "SGFM01", hub.EventSorted},
		{"pack", "SGFM01", hub.EventPacked},
		{"seal", "SGFM01", hub.EventSealed},
		{"handover", "SGFM01", hub.HandoverCode(hub.HandoverLinehaul, hub.StationFirstMile)},
		{"unpack", "SGSC01", hub.ArrivalCode(hub.StationSortCentre)},
		{"sort", "SGSC01", hub.EventSorted},
		{"handover", "SGSC01", hub.HandoverCode(hub.HandoverLinehaul, hub.StationSortCentre)},
		{"inbound", "SGLM02", hub.ArrivalCode(hub.StationLastMile)},
		{"handover", "SGLM02", hub.HandoverCode(hub.HandoverCourier, hub.StationLastMile)},
	}
	out := make([]hub.TrackingEvent, len(steps))
	for i, s := range steps {
		out[i] = hub.TrackingEvent{
			EventID: eventID(waybill, i), Waybill: waybill, Code: s.code,
			Kind: s.kind, Station: s.station, At: at.Add(time.Duration(i) * time.Minute), Operator: "op-1",
		}
	}
	return out
}

func TestEndToEndOutboxToOrderCentre(t *testing.T) {
	db := sqltest.New(t, sqldb.SQLite, sandbox.Migrations(), outboxMigrations())
	orders, upstream := startSandbox(t, db)
	q := newNATS(t)

	parcels := []string{createWaybill(t, upstream, "SGFM01", "SGLM02"), createWaybill(t, upstream, "SGFM01", "SGLM02")}
	var written []hub.TrackingEvent
	for _, w := range parcels {
		written = append(written, journey(w, t0)...)
	}
	// Interleave the two parcels' events as concurrent scans would.
	var events []hub.TrackingEvent
	half := len(written) / 2
	for i := range half {
		events = append(events, written[i], written[half+i])
	}
	unknown := hub.TrackingEvent{EventID: "refused-1", Waybill: "WPSG9999999999", Code: hub.EventException,
		Kind: "exception", Station: "SGFM01", At: t0, Operator: "op-1", Reason: "unknown_waybill"}
	enqueue(t, db, time.Now(), append(events, unknown)...)

	reg := prometheus.NewRegistry()
	feed, err := tracking.NewOrderFeed(q, &lossyOrders{OrderServiceClient: orders, lost: map[string]bool{}},
		tracking.FeedConfig{RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond}, nil, reg)
	require.NoError(t, err)
	require.NoError(t, feed.Start(testCtx(t)))
	t.Cleanup(func() { require.NoError(t, feed.Close(context.Background())) })
	relay, err := tracking.NewRelay(db, q, relayCfg(time.Now), nil, nil)
	require.NoError(t, err)
	runRelay(t, relay)

	// The queue delivers everything again, as after a relay crash.
	eventually(t, func() bool { return countRows(t, db, true) == 0 }, "outbox drained")
	var again []queue.Message
	for _, ev := range events {
		raw, err := json.Marshal(ev)
		require.NoError(t, err)
		again = append(again, queue.Message{Topic: hub.TrackingTopic, Key: ev.Waybill, Value: raw})
	}
	require.NoError(t, q.Publish(testCtx(t), again...))
	require.NoError(t, q.Publish(testCtx(t), queue.Message{Topic: hub.TrackingTopic, Key: "WPSG1", Value: []byte("garbage")}))

	eventually(t, func() bool {
		return labelled(t, reg, "waypost_hub_tracking_feed_events_total", "result", "duplicate") == float64(2*len(events)) &&
			labelled(t, reg, "waypost_hub_tracking_feed_events_total", "result", "poison") == 1 &&
			labelled(t, reg, "waypost_hub_tracking_feed_events_total", "result", "rejected") == 1
	}, "every delivery settled")
	// Each event's first call appended it and lost the answer; the retry
	// and the second delivery met duplicates.
	require.Zero(t, labelled(t, reg, "waypost_hub_tracking_feed_events_total", "result", "appended"))

	for _, w := range parcels {
		resp, err := orders.GetWaybill(testCtx(t), &orderv1.GetWaybillRequest{WaybillNo: w, IncludeTrack: true})
		require.NoError(t, err)
		want := journey(w, t0)
		track := resp.GetWaybill().GetTrack()
		require.Len(t, track, len(want), "each event recorded once")
		for i, got := range track {
			require.Equal(t, want[i].EventID, got.GetEventId())
			require.Equal(t, want[i].Code, got.GetEventCode())
			require.Equal(t, want[i].Station, got.GetStation())
			require.Equal(t, want[i].At, got.GetEventTime().AsTime())
			require.Equal(t, int64(i+1), got.GetSequence())
		}
		require.Equal(t, []string{"EMB", "HSR", "HPK", "HSL", "EMC", "EDD", "HSR", "EDE", "EMG", "EDG"}, codesOf(track))
	}
}

func codesOf(track []*orderv1.TrackEvent) []string {
	out := make([]string, len(track))
	for i, e := range track {
		out[i] = e.GetEventCode()
	}
	return out
}
