package downstream

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync/atomic"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/platform/log"
	basicdatav1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/basicdata/v1"
	billingv1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/billing/v1"
	deliveryv1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/delivery/v1"
	linehaulv1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/linehaul/v1"
	orderv1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/order/v1"
)

// GRPC is the Client over the downstream gRPC services. Stations, routes
// and sort plans are fetched once for all concurrent callers, cached for
// StationTTL and forgotten when basic data announces a change (see Watch);
// sort plans are cached only while Watch is subscribed.
type GRPC struct {
	cfg       Config
	logger    *slog.Logger
	met       *clientMetrics
	conn      *grpc.ClientConn
	order     orderv1.OrderServiceClient
	basicdata basicdatav1.BasicDataServiceClient
	billing   billingv1.BillingServiceClient
	delivery  deliveryv1.DeliveryServiceClient
	linehaul  linehaulv1.LinehaulServiceClient

	waybills *batcher[string, hub.Waybill]
	billings *batcher[billingKey, hub.BillingVerdict]
	statuses *batcher[string, hub.DeliveryStatus]
	stations *lookup[hub.Station]
	routes   *lookup[[]string]
	plans    *lookup[hub.SortPlan]
	// watching counts Watch subscriptions in place; sort plans are cached
	// only while there is one, since nothing else would tell the hub of a
	// newly published plan.
	watching atomic.Int32
}

// Option sets what a client takes besides its Config.
type Option func(*options)

type options struct {
	logger *slog.Logger
	reg    prometheus.Registerer
	tp     trace.TracerProvider
}

// WithLogger sets the logger; nil (the default) discards.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithRegisterer sets where the client's metrics are registered; nil (the
// default) keeps them unexported.
func WithRegisterer(reg prometheus.Registerer) Option { return func(o *options) { o.reg = reg } }

// WithTracerProvider gives every call Dial's connection makes a client span
// under tp, and carries the caller's trace context to the services; nil (the
// default) traces nothing and costs nothing.
func WithTracerProvider(tp trace.TracerProvider) Option { return func(o *options) { o.tp = tp } }

// Dial connects to target, where all five services are served (in `up`, the
// process's own gRPC address). It does not block on the connection.
func Dial(_ context.Context, target string, cfg Config, opts ...Option) (*GRPC, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	dialOpts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if o.tp != nil {
		dialOpts = append(dialOpts, grpc.WithStatsHandler(otelgrpc.NewClientHandler(
			otelgrpc.WithTracerProvider(o.tp), otelgrpc.WithPropagators(propagation.TraceContext{}))))
	}
	conn, err := grpc.NewClient(target, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("downstream: dial %s: %w", target, err)
	}
	g, err := New(conn, cfg, opts...)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return g, nil
}

// New returns a client over an existing connection; Close closes it.
func New(conn *grpc.ClientConn, cfg Config, opts ...Option) (*GRPC, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	met, err := newClientMetrics(o.reg)
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	logger := log.OrDiscard(o.logger)
	g := &GRPC{
		cfg:       cfg,
		logger:    logger,
		met:       met,
		conn:      conn,
		order:     orderv1.NewOrderServiceClient(conn),
		basicdata: basicdatav1.NewBasicDataServiceClient(conn),
		billing:   billingv1.NewBillingServiceClient(conn),
		delivery:  deliveryv1.NewDeliveryServiceClient(conn),
		linehaul:  linehaulv1.NewLinehaulServiceClient(conn),
	}
	g.waybills = &batcher[string, hub.Waybill]{max: cfg.BatchMax, inFlight: cfg.BatchInFlight, maxWait: cfg.BatchWait,
		service: "order centre", one: g.fetchWaybill, many: g.fetchWaybills, met: met.batch(kindWaybill)}
	g.billings = &batcher[billingKey, hub.BillingVerdict]{max: cfg.BatchMax, inFlight: cfg.BatchInFlight,
		maxWait: cfg.BatchWait, service: "billing", one: g.fetchBilling, many: g.fetchBillings, met: met.batch(kindBilling)}
	g.statuses = &batcher[string, hub.DeliveryStatus]{max: cfg.BatchMax, inFlight: cfg.BatchInFlight,
		maxWait: cfg.BatchWait, service: "delivery", one: g.fetchStatus, many: g.fetchStatuses, met: met.batch(kindDelivery)}
	if cfg.BatchInFlight < 0 {
		g.waybills.inFlight, g.billings.inFlight, g.statuses.inFlight = math.MaxInt, math.MaxInt, math.MaxInt
	}
	g.stations = newLookup(kindStation, cfg, logger, met, g.fetchStation, nil)
	g.routes = newLookup(kindRoute, cfg, logger, met, g.fetchRoute, slices.Clone[[]string])
	g.plans = newLookup(kindSortPlan, cfg, logger, met, g.fetchSortPlan, cloneSortPlan)
	g.plans.cacheIf = func() bool { return g.watching.Load() > 0 }
	return g, nil
}

// Close closes the connection; lookups still in flight fail.
func (g *GRPC) Close() error { return g.conn.Close() }

// call bounds ctx by the per-call timeout; an earlier caller deadline wins.
func (g *GRPC) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, g.cfg.CallTimeout)
}

// maxWaybillBatch is the order centre's limit of waybills per
// BatchGetWaybills call.
const maxWaybillBatch = 500

// Waybill returns a waybill from the order centre, fetched for this lookup:
// concurrent lookups share a BatchGetWaybills call (see batcher), but an
// answer is never reused for a later lookup, since a waybill may change.
func (g *GRPC) Waybill(ctx context.Context, no string) (hub.Waybill, error) {
	return g.waybills.get(ctx, no)
}

func (g *GRPC) fetchWaybill(ctx context.Context, no string) (hub.Waybill, error) {
	cctx, cancel := g.call(ctx)
	defer cancel()
	resp, err := g.order.GetWaybill(cctx, &orderv1.GetWaybillRequest{WaybillNo: no})
	if err != nil {
		return hub.Waybill{}, translate(cctx, "order centre", hub.CodeUnknownWaybill, err)
	}
	return waybillOf(resp.GetWaybill()), nil
}

// fetchWaybills asks for several waybills in one call; a number the order
// centre does not know is refused as GetWaybill refuses it.
func (g *GRPC) fetchWaybills(ctx context.Context, nos []string) ([]batchResult[hub.Waybill], error) {
	cctx, cancel := g.call(ctx)
	defer cancel()
	resp, err := g.order.BatchGetWaybills(cctx, &orderv1.BatchGetWaybillsRequest{WaybillNos: nos})
	if err != nil {
		return nil, translate(cctx, "order centre", hub.CodeUnknownWaybill, err)
	}
	return byWaybill(nos, resp.GetWaybills(), (*orderv1.Waybill).GetWaybillNo, waybillOf), nil
}

func waybillOf(w *orderv1.Waybill) hub.Waybill {
	return hub.Waybill{
		No: w.GetWaybillNo(), Market: w.GetMarket(), Origin: w.GetOriginStation(),
		Destination: w.GetDestinationStation(), Type: w.GetWaybillType(), Service: w.GetService(),
		WeightGrams: w.GetWeightGrams(), CODAmount: w.GetCodAmount(), Currency: w.GetCurrency(),
		Receiver: hub.Receiver{Name: w.GetReceiver().GetName(), Phone: w.GetReceiver().GetPhone(),
			Address: w.GetReceiver().GetAddress()},
		CreatedAt: w.GetCreateTime().AsTime(),
	}
}

// billingKey is one billing check.
type billingKey struct{ waybill, station, operation string }

// CheckBilling asks billing whether the parcel may move on; concurrent
// checks share a BatchCheck call, never a cached verdict.
func (g *GRPC) CheckBilling(ctx context.Context, waybill, station, operation string) (hub.BillingVerdict, error) {
	return g.billings.get(ctx, billingKey{waybill, station, operation})
}

func (g *GRPC) fetchBilling(ctx context.Context, k billingKey) (hub.BillingVerdict, error) {
	cctx, cancel := g.call(ctx)
	defer cancel()
	resp, err := g.billing.Check(cctx, &billingv1.CheckRequest{WaybillNo: k.waybill, Station: k.station, Operation: k.operation})
	if err != nil {
		return hub.BillingVerdict{}, translate(cctx, "billing", hub.CodeUnknownWaybill, err)
	}
	return billingVerdict(resp), nil
}

func (g *GRPC) fetchBillings(ctx context.Context, keys []billingKey) ([]batchResult[hub.BillingVerdict], error) {
	cctx, cancel := g.call(ctx)
	defer cancel()
	req := &billingv1.BatchCheckRequest{Checks: make([]*billingv1.CheckRequest, len(keys))}
	for i, k := range keys {
		req.Checks[i] = &billingv1.CheckRequest{WaybillNo: k.waybill, Station: k.station, Operation: k.operation}
	}
	resp, err := g.billing.BatchCheck(cctx, req)
	if err != nil {
		return nil, translate(cctx, "billing", hub.CodeUnknownWaybill, err)
	}
	if len(resp.GetResults()) != len(keys) {
		return nil, fmt.Errorf("billing: %d results for %d checks", len(resp.GetResults()), len(keys))
	}
	out := make([]batchResult[hub.BillingVerdict], len(keys))
	for i, r := range resp.GetResults() {
		if r.GetNotFound() {
			out[i].err = unknownWaybill(keys[i].waybill)
		} else {
			out[i].val = billingVerdict(r.GetVerdict())
		}
	}
	return out, nil
}

func billingVerdict(r *billingv1.CheckResponse) hub.BillingVerdict {
	return hub.BillingVerdict{OK: r.GetOk(), ReasonCode: r.GetReasonCode(), Message: r.GetMessage()}
}

// byWaybill puts a batch call's answers, which come keyed by waybill number
// in any order, in the order of nos; a number without an answer is refused
// as unknown.
func byWaybill[P any, V any](nos []string, answers []P, no func(P) string, conv func(P) V) []batchResult[V] {
	found := make(map[string]P, len(answers))
	for _, a := range answers {
		found[no(a)] = a
	}
	out := make([]batchResult[V], len(nos))
	for i, n := range nos {
		if a, ok := found[n]; ok {
			out[i].val = conv(a)
		} else {
			out[i].err = unknownWaybill(n)
		}
	}
	return out
}

// unknownWaybill is the refusal of a waybill a batch call reports missing,
// worded as the sandbox words a single call's NOT_FOUND.
func unknownWaybill(no string) error {
	return &hub.Refusal{Code: hub.CodeUnknownWaybill, Message: fmt.Sprintf("waybill %q: unknown waybill", no)}
}

// DeliveryStatus returns the parcel's delivery status; concurrent lookups
// share a BatchGetStatus call, never a cached status.
func (g *GRPC) DeliveryStatus(ctx context.Context, waybill string) (hub.DeliveryStatus, error) {
	return g.statuses.get(ctx, waybill)
}

func (g *GRPC) fetchStatus(ctx context.Context, waybill string) (hub.DeliveryStatus, error) {
	cctx, cancel := g.call(ctx)
	defer cancel()
	resp, err := g.delivery.GetStatus(cctx, &deliveryv1.GetStatusRequest{WaybillNo: waybill})
	if err != nil {
		return hub.DeliveryStatus{}, translate(cctx, "delivery", hub.CodeUnknownWaybill, err)
	}
	return deliveryStatusOf(resp), nil
}

func (g *GRPC) fetchStatuses(ctx context.Context, nos []string) ([]batchResult[hub.DeliveryStatus], error) {
	cctx, cancel := g.call(ctx)
	defer cancel()
	resp, err := g.delivery.BatchGetStatus(cctx, &deliveryv1.BatchGetStatusRequest{WaybillNos: nos})
	if err != nil {
		return nil, translate(cctx, "delivery", hub.CodeUnknownWaybill, err)
	}
	return byWaybill(nos, resp.GetStatuses(), (*deliveryv1.GetStatusResponse).GetWaybillNo, deliveryStatusOf), nil
}

func deliveryStatusOf(r *deliveryv1.GetStatusResponse) hub.DeliveryStatus {
	return hub.DeliveryStatus{Status: deliveryStatus(r.GetStatus()), Reason: r.GetReason()}
}

func deliveryStatus(s deliveryv1.DeliveryStatus) string {
	switch s {
	case deliveryv1.DeliveryStatus_DELIVERY_STATUS_CREATED:
		return hub.DeliveryCreated
	case deliveryv1.DeliveryStatus_DELIVERY_STATUS_IN_TRANSIT:
		return hub.DeliveryInTransit
	case deliveryv1.DeliveryStatus_DELIVERY_STATUS_OUT_FOR_DELIVERY:
		return hub.DeliveryOutForDelivery
	case deliveryv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED:
		return hub.DeliveryDelivered
	case deliveryv1.DeliveryStatus_DELIVERY_STATUS_CANCELLED:
		return hub.DeliveryCancelled
	case deliveryv1.DeliveryStatus_DELIVERY_STATUS_ON_HOLD:
		return hub.DeliveryOnHold
	}
	return ""
}

// Trip returns a linehaul trip.
func (g *GRPC) Trip(ctx context.Context, id string) (hub.Trip, error) {
	cctx, cancel := g.call(ctx)
	defer cancel()
	resp, err := g.linehaul.GetTrip(cctx, &linehaulv1.GetTripRequest{TripId: id})
	if err != nil {
		return hub.Trip{}, translate(cctx, "linehaul", hub.CodeUnknownTrip, err)
	}
	t := resp.GetTrip()
	return hub.Trip{ID: t.GetTripId(), Origin: t.GetOriginStation(), Destination: t.GetDestinationStation(),
		Departure: t.GetDepartureTime().AsTime()}, nil
}

// CreatePreAlert announces a trip's load.
func (g *GRPC) CreatePreAlert(ctx context.Context, pa hub.PreAlert) (string, error) {
	cctx, cancel := g.call(ctx)
	defer cancel()
	req := &linehaulv1.CreatePreAlertRequest{RequestId: pa.RequestID, TripId: pa.TripID,
		OriginStation: pa.Origin, SealNumber: pa.SealNumber}
	for _, c := range pa.Containers {
		kind := linehaulv1.ContainerKind_CONTAINER_KIND_BAG
		if c.Kind == hub.ContainerCage {
			kind = linehaulv1.ContainerKind_CONTAINER_KIND_CAGE
		}
		req.Containers = append(req.Containers, &linehaulv1.Container{ContainerId: c.ID, Kind: kind,
			DestinationStation: c.Destination, SealNumber: c.SealNumber, WaybillNos: c.Waybills,
			ChildContainerIds: c.Children})
	}
	resp, err := g.linehaul.CreatePreAlert(cctx, req)
	if err != nil {
		return "", translate(cctx, "linehaul", hub.CodeUnknownTrip, err)
	}
	return resp.GetPreAlert().GetPreAlertId(), nil
}

var _ Client = (*GRPC)(nil)
