package sandbox

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	basicdatav1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/basicdata/v1"
	billingv1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/billing/v1"
	deliveryv1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/delivery/v1"
	linehaulv1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/linehaul/v1"
	orderv1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/order/v1"
)

func callCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func trackEvent(id, no, code, station string, at time.Time) *orderv1.TrackEvent {
	return &orderv1.TrackEvent{EventId: id, WaybillNo: no, EventCode: code, Station: station,
		EventTime: timestamppb.New(at), Operator: "op-7"}
}

func TestOrderService(t *testing.T) {
	e := newSQLiteEnv(t, Config{})
	ctx := callCtx(t)
	oc := orderv1.NewOrderServiceClient(e.conn)
	no := e.createWaybill(t, "SGFM01", "SGLM02", nil)

	got, err := oc.GetWaybill(ctx, &orderv1.GetWaybillRequest{WaybillNo: no})
	require.NoError(t, err)
	require.Equal(t, "SGFM01", got.GetWaybill().GetOriginStation())
	require.Equal(t, "Tan Mei Ling", got.GetWaybill().GetReceiver().GetName())
	_, err = oc.GetWaybill(ctx, &orderv1.GetWaybillRequest{WaybillNo: "WPSG404"})
	require.Equal(t, codes.NotFound, status.Code(err))
	_, err = oc.GetWaybill(ctx, &orderv1.GetWaybillRequest{})
	require.Equal(t, codes.InvalidArgument, status.Code(err))

	at := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	resp, err := oc.AppendTrack(ctx, &orderv1.AppendTrackRequest{Events: []*orderv1.TrackEvent{
		trackEvent("wo-1", no, "EMC", "SGFM01", at),
		trackEvent("wo-2", no, "EDD", "SGSC01", at.Add(time.Hour)),
	}})
	require.NoError(t, err)
	require.Equal(t, int32(2), resp.GetAppended())
	// At least once: a redelivered batch records nothing new.
	resp, err = oc.AppendTrack(ctx, &orderv1.AppendTrackRequest{Events: []*orderv1.TrackEvent{
		trackEvent("wo-2", no, "EDD", "SGSC01", at.Add(time.Hour)),
		trackEvent("wo-3", no, "EDG", "SGLM02", at.Add(2*time.Hour)),
	}})
	require.NoError(t, err)
	require.Equal(t, int32(1), resp.GetAppended())
	require.Equal(t, int32(1), resp.GetDuplicates())
	// An unknown waybill fails the whole batch.
	_, err = oc.AppendTrack(ctx, &orderv1.AppendTrackRequest{Events: []*orderv1.TrackEvent{
		trackEvent("wo-4", no, "EMI", "SGLM02", at.Add(3*time.Hour)),
		trackEvent("wo-5", "WPSG404", "EDD", "SGSC01", at),
	}})
	require.Equal(t, codes.NotFound, status.Code(err))
	_, err = oc.AppendTrack(ctx, &orderv1.AppendTrackRequest{Events: []*orderv1.TrackEvent{{EventId: "x", WaybillNo: no}}})
	require.Equal(t, codes.InvalidArgument, status.Code(err))

	got, err = oc.GetWaybill(ctx, &orderv1.GetWaybillRequest{WaybillNo: no, IncludeTrack: true})
	require.NoError(t, err)
	var codesSeen []string
	for i, ev := range got.GetWaybill().GetTrack() {
		codesSeen = append(codesSeen, ev.GetEventCode())
		require.Equal(t, int64(i+1), ev.GetSequence())
	}
	require.Equal(t, []string{"EMC", "EDD", "EDG"}, codesSeen)

	batch, err := oc.BatchGetWaybills(ctx, &orderv1.BatchGetWaybillsRequest{WaybillNos: []string{"WPSG404", no}})
	require.NoError(t, err)
	require.Len(t, batch.GetWaybills(), 1)
	require.Equal(t, []string{"WPSG404"}, batch.GetMissingWaybillNos())

	// The delivery status followed the track: EDG means out for delivery.
	st, err := deliveryv1.NewDeliveryServiceClient(e.conn).GetStatus(ctx, &deliveryv1.GetStatusRequest{WaybillNo: no})
	require.NoError(t, err)
	require.Equal(t, deliveryv1.DeliveryStatus_DELIVERY_STATUS_OUT_FOR_DELIVERY, st.GetStatus())
}

func TestWatchWaybillChanges(t *testing.T) {
	e := newSQLiteEnv(t, Config{})
	ctx, cancel := context.WithCancel(callCtx(t))
	defer cancel()
	first := e.createWaybill(t, "SGFM01", "SGLM01", nil)

	stream, err := orderv1.NewOrderServiceClient(e.conn).WatchWaybillChanges(ctx, &orderv1.WatchWaybillChangesRequest{})
	require.NoError(t, err)
	msg, err := stream.Recv()
	require.NoError(t, err, "replays history")
	require.Equal(t, first, msg.GetWaybillNo())
	require.Equal(t, orderv1.WaybillChangeKind_WAYBILL_CHANGE_KIND_CREATED, msg.GetKind())
	require.Equal(t, first, msg.GetWaybill().GetWaybillNo())

	second := e.createWaybill(t, "MYFM02", "MYLM03", nil)
	msg2, err := stream.Recv()
	require.NoError(t, err, "streams live changes")
	require.Equal(t, second, msg2.GetWaybillNo())
	require.Greater(t, msg2.GetRevision(), msg.GetRevision())

	require.Equal(t, http.StatusOK, e.do(t, http.MethodPut, "/sandbox/v1/admin/waybills/"+first+"/hold", map[string]any{"hold": true}, nil))
	msg3, err := stream.Recv()
	require.NoError(t, err)
	require.Equal(t, orderv1.WaybillChangeKind_WAYBILL_CHANGE_KIND_STATUS_CHANGED, msg3.GetKind())

	// Resuming after a revision skips what was seen.
	resumed, err := orderv1.NewOrderServiceClient(e.conn).WatchWaybillChanges(ctx, &orderv1.WatchWaybillChangesRequest{SinceRevision: msg2.GetRevision()})
	require.NoError(t, err)
	msg4, err := resumed.Recv()
	require.NoError(t, err)
	require.Equal(t, msg3.GetRevision(), msg4.GetRevision())
}

func TestBasicDataService(t *testing.T) {
	e := newSQLiteEnv(t, Config{})
	ctx := callCtx(t)
	bc := basicdatav1.NewBasicDataServiceClient(e.conn)

	st, err := bc.GetStation(ctx, &basicdatav1.GetStationRequest{Code: "MYSC02"})
	require.NoError(t, err)
	require.Equal(t, basicdatav1.StationKind_STATION_KIND_SORT_CENTRE, st.GetStation().GetKind())
	require.Equal(t, "Senai Sort Centre", st.GetStation().GetName())
	_, err = bc.GetStation(ctx, &basicdatav1.GetStationRequest{Code: "ZZ"})
	require.Equal(t, codes.NotFound, status.Code(err))

	list, err := bc.ListStations(ctx, &basicdatav1.ListStationsRequest{Market: "MY", Kind: basicdatav1.StationKind_STATION_KIND_FIRST_MILE})
	require.NoError(t, err)
	require.Len(t, list.GetStations(), 3)
	all, err := bc.ListStations(ctx, &basicdatav1.ListStationsRequest{})
	require.NoError(t, err)
	require.Len(t, all.GetStations(), 20)

	route, err := bc.GetRoute(ctx, &basicdatav1.GetRouteRequest{OriginStation: "MYFM01", DestinationStation: "SGLM04"})
	require.NoError(t, err)
	require.Equal(t, []string{"MYFM01", "MYSC01", "MYSC02", "SGSC01", "SGLM04"}, route.GetRoute().GetStationCodes())
	_, err = bc.GetRoute(ctx, &basicdatav1.GetRouteRequest{OriginStation: "MYFM01", DestinationStation: "ZZ"})
	require.Equal(t, codes.NotFound, status.Code(err))

	plan, err := bc.GetSortPlan(ctx, &basicdatav1.GetSortPlanRequest{Station: "MYSC02"})
	require.NoError(t, err)
	require.Equal(t, int64(1), plan.GetSortPlan().GetVersion())
	require.Equal(t, "X01", plan.GetSortPlan().GetExceptionChute())
	var toSG *basicdatav1.SortRule
	for _, r := range plan.GetSortPlan().GetRules() {
		if r.GetDestinationStation() == "SGLM01" && r.GetWaybillType() == "" {
			toSG = r
		}
	}
	require.NotNil(t, toSG)
	require.Equal(t, "SGSC01", toSG.GetNextHop())
	_, err = bc.GetSortPlan(ctx, &basicdatav1.GetSortPlanRequest{Station: "MYSC02", Version: 9})
	require.Equal(t, codes.NotFound, status.Code(err))
	_, err = bc.GetSortPlan(ctx, &basicdatav1.GetSortPlanRequest{Station: "ZZ"})
	require.Equal(t, codes.NotFound, status.Code(err))

	// Changes: a new sort plan and a station update arrive on the stream.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := bc.WatchChanges(wctx, &basicdatav1.WatchChangesRequest{})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, e.do(t, http.MethodPost, "/sandbox/v1/admin/sort-plans/MYSC02",
		map[string]any{"rules": []SortRule{{Priority: 1, DestinationStation: "SGLM01", NextHop: "SGSC01", Chute: "C42"}}}, nil))
	ch, err := stream.Recv()
	require.NoError(t, err)
	require.Equal(t, basicdatav1.ChangeKind_CHANGE_KIND_SORT_PLAN_PUBLISHED, ch.GetKind())
	require.Equal(t, "MYSC02", ch.GetStation())
	require.Equal(t, int64(2), ch.GetSortPlanVersion())
	require.Equal(t, http.StatusOK, e.do(t, http.MethodPut, "/sandbox/v1/admin/stations/MYLM05", map[string]any{"exceptionChute": "X02"}, nil))
	ch, err = stream.Recv()
	require.NoError(t, err)
	require.Equal(t, basicdatav1.ChangeKind_CHANGE_KIND_STATION_UPDATED, ch.GetKind())
	require.Equal(t, "MYLM05", ch.GetStation())

	plan, err = bc.GetSortPlan(ctx, &basicdatav1.GetSortPlanRequest{Station: "MYSC02"})
	require.NoError(t, err)
	require.Equal(t, int64(2), plan.GetSortPlan().GetVersion())
	old, err := bc.GetSortPlan(ctx, &basicdatav1.GetSortPlanRequest{Station: "MYSC02", Version: 1})
	require.NoError(t, err)
	require.Greater(t, len(old.GetSortPlan().GetRules()), 1, "old versions stay readable")
}

func TestBillingAndDelivery(t *testing.T) {
	e := newSQLiteEnv(t, Config{})
	ctx := callCtx(t)
	bc := billingv1.NewBillingServiceClient(e.conn)
	dc := deliveryv1.NewDeliveryServiceClient(e.conn)
	no := e.createWaybill(t, "SGFM02", "SGLM03", nil)

	ok, err := bc.Check(ctx, &billingv1.CheckRequest{WaybillNo: no, Station: "SGFM02", Operation: "inbound"})
	require.NoError(t, err)
	require.True(t, ok.GetOk())
	require.Equal(t, http.StatusOK, e.do(t, http.MethodPut, "/sandbox/v1/admin/waybills/"+no+"/billing",
		map[string]any{"blocked": true, "reasonCode": "unpaid_shipping_fee"}, nil))
	blocked, err := bc.Check(ctx, &billingv1.CheckRequest{WaybillNo: no})
	require.NoError(t, err)
	require.False(t, blocked.GetOk())
	require.Equal(t, "unpaid_shipping_fee", blocked.GetReasonCode())
	_, err = bc.Check(ctx, &billingv1.CheckRequest{WaybillNo: "WPSG404"})
	require.Equal(t, codes.NotFound, status.Code(err))

	tests := []struct {
		path string
		body map[string]any
		want deliveryv1.DeliveryStatus
	}{
		{"delivery-status", map[string]any{"status": "out_for_delivery"}, deliveryv1.DeliveryStatus_DELIVERY_STATUS_OUT_FOR_DELIVERY},
		{"hold", map[string]any{"hold": true, "reason": "address_check"}, deliveryv1.DeliveryStatus_DELIVERY_STATUS_ON_HOLD},
		{"delivery-status", map[string]any{"status": "cancelled"}, deliveryv1.DeliveryStatus_DELIVERY_STATUS_CANCELLED},
		{"delivery-status", map[string]any{"status": "delivered"}, deliveryv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED},
	}
	for _, tt := range tests {
		t.Run(tt.want.String(), func(t *testing.T) {
			require.Equal(t, http.StatusOK, e.do(t, http.MethodPut, "/sandbox/v1/admin/waybills/"+no+"/"+tt.path, tt.body, nil))
			st, err := dc.GetStatus(ctx, &deliveryv1.GetStatusRequest{WaybillNo: no})
			require.NoError(t, err)
			require.Equal(t, tt.want, st.GetStatus())
		})
	}
	_, err = dc.GetStatus(ctx, &deliveryv1.GetStatusRequest{WaybillNo: "WPSG404"})
	require.Equal(t, codes.NotFound, status.Code(err))
}

func TestLinehaulService(t *testing.T) {
	now := time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC) // 11:00 in Singapore
	e := newSQLiteEnv(t, Config{Now: func() time.Time { return now }})
	ctx := callCtx(t)
	lc := linehaulv1.NewLinehaulServiceClient(e.conn)

	trips, err := lc.ListTrips(ctx, &linehaulv1.ListTripsRequest{OriginStation: "SGFM01", DestinationStation: "SGSC01"})
	require.NoError(t, err)
	require.Len(t, trips.GetTrips(), 6, "three departures a day over the default two days")
	first := trips.GetTrips()[0]
	require.Equal(t, "LH-20261129-SGFM01-SGSC01-1000", first.GetTripId())
	require.Equal(t, linehaulv1.TripStatus_TRIP_STATUS_DEPARTED, first.GetStatus())
	require.Equal(t, linehaulv1.TripStatus_TRIP_STATUS_SCHEDULED, trips.GetTrips()[1].GetStatus())
	_, err = lc.ListTrips(ctx, &linehaulv1.ListTripsRequest{
		DepartureAfter: timestamppb.New(now), DepartureBefore: timestamppb.New(now.Add(30 * 24 * time.Hour))})
	require.Equal(t, codes.InvalidArgument, status.Code(err))

	req := &linehaulv1.CreatePreAlertRequest{
		RequestId: "handover-1", TripId: first.GetTripId(), OriginStation: "SGFM01", SealNumber: "S-0001",
		Containers: []*linehaulv1.Container{
			{ContainerId: "CG-1", Kind: linehaulv1.ContainerKind_CONTAINER_KIND_CAGE, DestinationStation: "SGSC01", ChildContainerIds: []string{"BG-1"}},
			{ContainerId: "BG-1", Kind: linehaulv1.ContainerKind_CONTAINER_KIND_BAG, DestinationStation: "SGSC01", WaybillNos: []string{"WPSG1", "WPSG2"}},
		},
	}
	pa, err := lc.CreatePreAlert(ctx, req)
	require.NoError(t, err)
	require.Equal(t, "SGSC01", pa.GetPreAlert().GetDestinationStation())
	again, err := lc.CreatePreAlert(ctx, req)
	require.NoError(t, err)
	require.Equal(t, pa.GetPreAlert().GetPreAlertId(), again.GetPreAlert().GetPreAlertId(), "same request id, same pre-alert")

	trip, err := lc.GetTrip(ctx, &linehaulv1.GetTripRequest{TripId: first.GetTripId()})
	require.NoError(t, err)
	require.Len(t, trip.GetTrip().GetPreAlerts(), 1)
	got := trip.GetTrip().GetPreAlerts()[0].GetContainers()
	require.Len(t, got, 2)
	require.Equal(t, []string{"BG-1"}, got[0].GetChildContainerIds())
	require.Equal(t, []string{"WPSG1", "WPSG2"}, got[1].GetWaybillNos())

	bad := []struct {
		name string
		mut  func(r *linehaulv1.CreatePreAlertRequest)
		code codes.Code
	}{
		{"no request id", func(r *linehaulv1.CreatePreAlertRequest) { r.RequestId = "" }, codes.InvalidArgument},
		{"unknown trip", func(r *linehaulv1.CreatePreAlertRequest) { r.TripId = "LH-x" }, codes.NotFound},
		{"wrong origin", func(r *linehaulv1.CreatePreAlertRequest) { r.OriginStation = "SGSC01" }, codes.FailedPrecondition},
		{"no containers", func(r *linehaulv1.CreatePreAlertRequest) { r.Containers = nil }, codes.InvalidArgument},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			r := &linehaulv1.CreatePreAlertRequest{RequestId: "r-" + tt.name, TripId: first.GetTripId(),
				OriginStation: "SGFM01", Containers: req.GetContainers()}
			tt.mut(r)
			_, err := lc.CreatePreAlert(ctx, r)
			require.Equal(t, tt.code, status.Code(err))
		})
	}
	_, err = lc.GetTrip(ctx, &linehaulv1.GetTripRequest{TripId: "LH-20261129-SGFM01-SGLM01-1000"})
	require.Equal(t, codes.NotFound, status.Code(err))
}

// blockingSleeper waits until the context ends, like a service that never
// answers in time; it never returns on its own.
type blockingSleeper struct{}

func (blockingSleeper) Sleep(ctx context.Context, _ time.Duration) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestInjectedLatencyRespectsDeadlineOverGRPC(t *testing.T) {
	e := newSQLiteEnv(t, Config{
		Injection: Injection{Latency: map[string]Delay{SvcAll: {Fixed: time.Hour}}},
		Sleeper:   blockingSleeper{},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := billingv1.NewBillingServiceClient(e.conn).Check(ctx, &billingv1.CheckRequest{WaybillNo: "WPSG1"})
	require.Equal(t, codes.DeadlineExceeded, status.Code(err))
}

func TestInjectedErrorsOverGRPC(t *testing.T) {
	in, err := ParseInjection("errors=delivery:1")
	require.NoError(t, err)
	e := newSQLiteEnv(t, Config{Injection: in})
	ctx := callCtx(t)
	_, err = deliveryv1.NewDeliveryServiceClient(e.conn).GetStatus(ctx, &deliveryv1.GetStatusRequest{WaybillNo: "WPSG1"})
	require.Equal(t, codes.Unavailable, status.Code(err))
	_, err = basicdatav1.NewBasicDataServiceClient(e.conn).GetStation(ctx, &basicdatav1.GetStationRequest{Code: "SGSC01"})
	require.NoError(t, err, "other services are not failed")
}

// TestSeedLatencyEveryService checks that with "seed" every service's calls
// wait 80–120 ms, measured by the injected sleeper rather than the clock.
func TestSeedLatencyEveryService(t *testing.T) {
	fs := &fakeSleeper{}
	e := newSQLiteEnv(t, Config{Injection: SeedInjection(), Sleeper: fs})
	ctx := callCtx(t)
	no := e.createWaybill(t, "SGFM01", "SGLM01", nil)
	_, err := orderv1.NewOrderServiceClient(e.conn).GetWaybill(ctx, &orderv1.GetWaybillRequest{WaybillNo: no})
	require.NoError(t, err)
	_, err = basicdatav1.NewBasicDataServiceClient(e.conn).GetStation(ctx, &basicdatav1.GetStationRequest{Code: "SGFM01"})
	require.NoError(t, err)
	_, err = billingv1.NewBillingServiceClient(e.conn).Check(ctx, &billingv1.CheckRequest{WaybillNo: no})
	require.NoError(t, err)
	_, err = deliveryv1.NewDeliveryServiceClient(e.conn).GetStatus(ctx, &deliveryv1.GetStatusRequest{WaybillNo: no})
	require.NoError(t, err)
	_, err = linehaulv1.NewLinehaulServiceClient(e.conn).ListTrips(ctx, &linehaulv1.ListTripsRequest{OriginStation: "SGFM01"})
	require.NoError(t, err)

	fs.mu.Lock()
	defer fs.mu.Unlock()
	require.Len(t, fs.sleeps, 5, "one injected wait per call, none for the HTTP upstream")
	for _, d := range fs.sleeps {
		require.GreaterOrEqual(t, d, 80*time.Millisecond)
		require.LessOrEqual(t, d, 120*time.Millisecond)
	}
}
