package downstream

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	basicdatav1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/basicdata/v1"
)

// Methods of the fake basic data, as counted.
const (
	mStation  = "GetStation"
	mRoute    = "GetRoute"
	mSortPlan = "GetSortPlan"
)

// fakeBasicData is a basic data server the test steers: it counts calls,
// can hold them until released, serves a sort plan version the test sets,
// and streams the changes the test sends.
type fakeBasicData struct {
	basicdatav1.UnimplementedBasicDataServiceServer
	// hold, when set before the server starts, keeps every lookup waiting
	// until it is closed (or the call's context ends).
	hold chan struct{}
	// delay is added to every lookup (benchmarks only).
	delay time.Duration
	// entered receives the method of every lookup as it arrives.
	entered chan string
	// subs receives since_revision of every WatchChanges subscription.
	subs chan int64
	// events are sent on the current change stream; drop ends it with the
	// error received (nil: a clean end).
	events chan *basicdatav1.WatchChangesResponse
	drop   chan error

	calls       map[string]*atomic.Int64
	planVersion atomic.Int64
}

func newFake() *fakeBasicData {
	f := &fakeBasicData{
		entered: make(chan string, 4096),
		subs:    make(chan int64, 16),
		events:  make(chan *basicdatav1.WatchChangesResponse),
		drop:    make(chan error),
		calls:   map[string]*atomic.Int64{mStation: {}, mRoute: {}, mSortPlan: {}},
	}
	f.planVersion.Store(1)
	return f
}

func (f *fakeBasicData) count(method string) int64 { return f.calls[method].Load() }

// enter counts a lookup and holds it while hold is open.
func (f *fakeBasicData) enter(ctx context.Context, method string) error {
	f.calls[method].Add(1)
	select {
	case f.entered <- method:
	default:
	}
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	if f.hold == nil {
		return nil
	}
	select {
	case <-f.hold:
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

func (f *fakeBasicData) GetStation(ctx context.Context, req *basicdatav1.GetStationRequest) (*basicdatav1.GetStationResponse, error) {
	if err := f.enter(ctx, mStation); err != nil {
		return nil, err
	}
	if req.GetCode() == "ZZ99" {
		return nil, status.Error(codes.NotFound, "no station ZZ99")
	}
	return &basicdatav1.GetStationResponse{Station: &basicdatav1.Station{
		Code: req.GetCode(), Name: fmt.Sprintf("%s #%d", req.GetCode(), f.count(mStation)),
		Kind: basicdatav1.StationKind_STATION_KIND_SORT_CENTRE, Active: true, ExceptionChute: "X01",
	}}, nil
}

// GetRoute routes every pair through SGSC01.
func (f *fakeBasicData) GetRoute(ctx context.Context, req *basicdatav1.GetRouteRequest) (*basicdatav1.GetRouteResponse, error) {
	if err := f.enter(ctx, mRoute); err != nil {
		return nil, err
	}
	o, d := req.GetOriginStation(), req.GetDestinationStation()
	hop := "SGSC01"
	if strings.HasPrefix(o, "MY") {
		hop = "MYSC01"
	}
	return &basicdatav1.GetRouteResponse{Route: &basicdatav1.Route{
		OriginStation: o, DestinationStation: d, StationCodes: []string{o, hop, d},
	}}, nil
}

func (f *fakeBasicData) GetSortPlan(ctx context.Context, req *basicdatav1.GetSortPlanRequest) (*basicdatav1.GetSortPlanResponse, error) {
	if err := f.enter(ctx, mSortPlan); err != nil {
		return nil, err
	}
	return &basicdatav1.GetSortPlanResponse{SortPlan: &basicdatav1.SortPlan{
		Station: req.GetStation(), Version: f.planVersion.Load(), ExceptionChute: "X01",
		Rules: []*basicdatav1.SortRule{{Priority: 1, NextHop: "SGSC01", Chute: "C01"}},
	}}, nil
}

func (f *fakeBasicData) WatchChanges(req *basicdatav1.WatchChangesRequest, stream basicdatav1.BasicDataService_WatchChangesServer) error {
	ctx := stream.Context()
	select {
	case f.subs <- req.GetSinceRevision():
	case <-ctx.Done():
		return nil
	}
	for {
		select {
		case ev := <-f.events:
			if err := stream.Send(ev); err != nil {
				return err
			}
		case err := <-f.drop:
			return err
		case <-ctx.Done():
			return nil
		}
	}
}

// startFake serves f over an in-process connection and returns a client
// to it with its metrics registry. Dial options add client interceptors.
func startFake(tb testing.TB, f *fakeBasicData, cfg Config, dial ...grpc.DialOption) (*GRPC, *prometheus.Registry) {
	tb.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	basicdatav1.RegisterBasicDataServiceServer(srv, f)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	dial = append(dial, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	conn, err := grpc.NewClient("passthrough:///basicdata", dial...)
	require.NoError(tb, err)
	reg := prometheus.NewRegistry()
	g, err := New(conn, cfg, WithRegisterer(reg))
	require.NoError(tb, err)
	tb.Cleanup(func() {
		_ = g.Close()
		srv.Stop()
		require.NoError(tb, <-served)
	})
	return g, reg
}

// counter reads one child of a lookup or change counter from reg.
func counter(tb testing.TB, reg *prometheus.Registry, name, kind string) float64 {
	tb.Helper()
	families, err := reg.Gather()
	require.NoError(tb, err)
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() == kind {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
