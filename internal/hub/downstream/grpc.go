package downstream

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/waypost/waypost/internal/hub"
	basicdatav1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/basicdata/v1"
	billingv1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/billing/v1"
	deliveryv1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/delivery/v1"
	linehaulv1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/linehaul/v1"
	orderv1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/order/v1"
)

// GRPC is the Client over the downstream gRPC services.
type GRPC struct {
	cfg       Config
	conn      *grpc.ClientConn
	order     orderv1.OrderServiceClient
	basicdata basicdatav1.BasicDataServiceClient
	billing   billingv1.BillingServiceClient
	delivery  deliveryv1.DeliveryServiceClient
	linehaul  linehaulv1.LinehaulServiceClient

	mu       sync.Mutex
	stations map[string]cachedStation
	routes   map[[2]string]cachedRoute
}

// maxRoutes bounds the route cache.
const maxRoutes = 4096

type cachedRoute struct {
	route []string
	until int64
}

type cachedStation struct {
	station hub.Station
	until   int64
}

// Dial connects to target, where all five services are served (in `up`, the
// process's own gRPC address). It does not block on the connection.
func Dial(_ context.Context, target string, cfg Config) (*GRPC, error) {
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("downstream: dial %s: %w", target, err)
	}
	return New(conn, cfg), nil
}

// New returns a client over an existing connection; Close closes it.
func New(conn *grpc.ClientConn, cfg Config) *GRPC {
	return &GRPC{
		cfg:       cfg.withDefaults(),
		conn:      conn,
		order:     orderv1.NewOrderServiceClient(conn),
		basicdata: basicdatav1.NewBasicDataServiceClient(conn),
		billing:   billingv1.NewBillingServiceClient(conn),
		delivery:  deliveryv1.NewDeliveryServiceClient(conn),
		linehaul:  linehaulv1.NewLinehaulServiceClient(conn),
		stations:  make(map[string]cachedStation),
		routes:    make(map[[2]string]cachedRoute),
	}
}

// Close closes the connection.
func (g *GRPC) Close() error { return g.conn.Close() }

// call bounds ctx by the per-call timeout; an earlier caller deadline wins.
func (g *GRPC) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, g.cfg.CallTimeout)
}

// Station returns a station, reusing a lookup younger than StationTTL.
func (g *GRPC) Station(ctx context.Context, code string) (hub.Station, error) {
	now := g.cfg.Now().UnixNano()
	g.mu.Lock()
	c, ok := g.stations[code]
	g.mu.Unlock()
	if ok && now < c.until {
		return c.station, nil
	}
	st, err := g.fetchStation(ctx, code)
	if err != nil {
		return hub.Station{}, err
	}
	g.mu.Lock()
	g.stations[code] = cachedStation{station: st, until: now + int64(g.cfg.StationTTL)}
	g.mu.Unlock()
	return st, nil
}

// ForgetStation drops a cached station, for callers that learn it changed.
func (g *GRPC) ForgetStation(code string) {
	g.mu.Lock()
	delete(g.stations, code)
	g.mu.Unlock()
}

func (g *GRPC) fetchStation(ctx context.Context, code string) (hub.Station, error) {
	cctx, cancel := g.call(ctx)
	defer cancel()
	resp, err := g.basicdata.GetStation(cctx, &basicdatav1.GetStationRequest{Code: code})
	if err != nil {
		return hub.Station{}, translate(cctx, "basic data", hub.CodeUnknownStation, err)
	}
	s := resp.GetStation()
	return hub.Station{
		Code: s.GetCode(), Name: s.GetName(), Kind: stationKind(s.GetKind()), Market: s.GetMarket(),
		TimeZone: s.GetTimeZone(), Active: s.GetActive(), ExceptionChute: s.GetExceptionChute(),
	}, nil
}

func stationKind(k basicdatav1.StationKind) string {
	switch k {
	case basicdatav1.StationKind_STATION_KIND_FIRST_MILE:
		return hub.StationFirstMile
	case basicdatav1.StationKind_STATION_KIND_SORT_CENTRE:
		return hub.StationSortCentre
	case basicdatav1.StationKind_STATION_KIND_LAST_MILE:
		return hub.StationLastMile
	}
	return ""
}

// Waybill returns a waybill from the order centre.
func (g *GRPC) Waybill(ctx context.Context, no string) (hub.Waybill, error) {
	cctx, cancel := g.call(ctx)
	defer cancel()
	resp, err := g.order.GetWaybill(cctx, &orderv1.GetWaybillRequest{WaybillNo: no})
	if err != nil {
		return hub.Waybill{}, translate(cctx, "order centre", hub.CodeUnknownWaybill, err)
	}
	w := resp.GetWaybill()
	return hub.Waybill{
		No: w.GetWaybillNo(), Market: w.GetMarket(), Origin: w.GetOriginStation(),
		Destination: w.GetDestinationStation(), Type: w.GetWaybillType(), Service: w.GetService(),
		WeightGrams: w.GetWeightGrams(), CODAmount: w.GetCodAmount(), Currency: w.GetCurrency(),
		Receiver: hub.Receiver{Name: w.GetReceiver().GetName(), Phone: w.GetReceiver().GetPhone(),
			Address: w.GetReceiver().GetAddress()},
		CreatedAt: w.GetCreateTime().AsTime(),
	}, nil
}

// Route returns the stations a parcel passes from origin to destination.
// Routes are basic data like stations and are reused for StationTTL: every
// scan asks for one, and a network's roads change far less often than that.
func (g *GRPC) Route(ctx context.Context, origin, destination string) ([]string, error) {
	key, now := [2]string{origin, destination}, g.cfg.Now().UnixNano()
	g.mu.Lock()
	c, ok := g.routes[key]
	g.mu.Unlock()
	if ok && now < c.until {
		return slices.Clone(c.route), nil
	}
	route, err := g.fetchRoute(ctx, origin, destination)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	if len(g.routes) >= maxRoutes {
		clear(g.routes) // only after a flood of distinct pairs; they refill
	}
	g.routes[key] = cachedRoute{route: route, until: now + int64(g.cfg.StationTTL)}
	g.mu.Unlock()
	return slices.Clone(route), nil
}

func (g *GRPC) fetchRoute(ctx context.Context, origin, destination string) ([]string, error) {
	cctx, cancel := g.call(ctx)
	defer cancel()
	resp, err := g.basicdata.GetRoute(cctx, &basicdatav1.GetRouteRequest{OriginStation: origin, DestinationStation: destination})
	if err != nil {
		return nil, translate(cctx, "basic data", hub.CodeWrongStation, err)
	}
	return slices.Clone(resp.GetRoute().GetStationCodes()), nil
}

// SortPlan returns a station's current sort plan.
func (g *GRPC) SortPlan(ctx context.Context, station string) (hub.SortPlan, error) {
	cctx, cancel := g.call(ctx)
	defer cancel()
	resp, err := g.basicdata.GetSortPlan(cctx, &basicdatav1.GetSortPlanRequest{Station: station})
	if err != nil {
		return hub.SortPlan{}, translate(cctx, "basic data", hub.CodeUnknownStation, err)
	}
	p := resp.GetSortPlan()
	plan := hub.SortPlan{Station: p.GetStation(), Version: p.GetVersion(), ExceptionChute: p.GetExceptionChute()}
	for _, r := range p.GetRules() {
		plan.Rules = append(plan.Rules, hub.SortRule{
			Priority: r.GetPriority(), WaybillType: r.GetWaybillType(), Service: r.GetService(),
			Destination: r.GetDestinationStation(), NextHop: r.GetNextHop(), Chute: r.GetChute(),
		})
	}
	return plan, nil
}

// CheckBilling asks billing whether the parcel may move on.
func (g *GRPC) CheckBilling(ctx context.Context, waybill, station, operation string) (hub.BillingVerdict, error) {
	cctx, cancel := g.call(ctx)
	defer cancel()
	resp, err := g.billing.Check(cctx, &billingv1.CheckRequest{WaybillNo: waybill, Station: station, Operation: operation})
	if err != nil {
		return hub.BillingVerdict{}, translate(cctx, "billing", hub.CodeUnknownWaybill, err)
	}
	return hub.BillingVerdict{OK: resp.GetOk(), ReasonCode: resp.GetReasonCode(), Message: resp.GetMessage()}, nil
}

// DeliveryStatus returns the parcel's delivery status.
func (g *GRPC) DeliveryStatus(ctx context.Context, waybill string) (hub.DeliveryStatus, error) {
	cctx, cancel := g.call(ctx)
	defer cancel()
	resp, err := g.delivery.GetStatus(cctx, &deliveryv1.GetStatusRequest{WaybillNo: waybill})
	if err != nil {
		return hub.DeliveryStatus{}, translate(cctx, "delivery", hub.CodeUnknownWaybill, err)
	}
	return hub.DeliveryStatus{Status: deliveryStatus(resp.GetStatus()), Reason: resp.GetReason()}, nil
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
