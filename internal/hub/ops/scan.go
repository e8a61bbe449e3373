package ops

import (
	"context"
	"slices"
	"time"

	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/hub/store"
)

// Scan is one scan of a parcel at a station by a PDA or a web client.
type Scan struct {
	Station  string `json:"station"`
	Waybill  string `json:"waybill"`
	Operator string `json:"operator"`
	Device   string `json:"device"`
	// ScanID, when the client sends one, identifies the scan; without it
	// the scan is identified by station, operation and waybill, so the same
	// parcel is taken in (or sorted) once per station.
	ScanID string `json:"scanId,omitempty"`
}

func (sc Scan) validate() error {
	if err := required("station", sc.Station, "waybill", sc.Waybill, "operator", sc.Operator); err != nil {
		return err
	}
	return barcode("waybill", sc.Waybill)
}

func (sc Scan) attempt(kind string) attempt {
	return attempt{key: idemKey(sc.Station, kind, sc.Waybill, sc.ScanID), kind: kind, station: sc.Station,
		waybill: sc.Waybill, operator: sc.Operator, device: sc.Device}
}

// InboundResult is the answer to an inbound scan.
type InboundResult struct {
	WorkOrderID string    `json:"workOrderId"`
	Waybill     string    `json:"waybill"`
	Station     string    `json:"station"`
	Status      string    `json:"status"`
	Destination string    `json:"destination"`
	Route       []string  `json:"route"`
	At          time.Time `json:"at"`
}

// checked is what the downstream checks of a scan learned.
type checked struct {
	station hub.Station
	waybill hub.Waybill
	route   []string
}

// check runs the checks inbound and sort share, one downstream call after
// the other: the station, the waybill, its route through this station,
// billing and the delivery status.
func (s *Service) check(ctx context.Context, sc Scan, op string) (checked, error) {
	var c checked
	var err error
	if c.station, err = s.ds.Station(ctx, sc.Station); err != nil {
		return c, err
	}
	if !c.station.Active {
		return c, hub.Refuse(hub.CodeStationInactive, "station %s takes no parcels at the moment", sc.Station)
	}
	if c.waybill, err = s.ds.Waybill(ctx, sc.Waybill); err != nil {
		return c, err
	}
	verdict, err := s.ds.CheckBilling(ctx, sc.Waybill, sc.Station, op)
	if err != nil {
		return c, err
	}
	if !verdict.OK {
		return c, hub.Refuse(hub.CodeBillingBlocked, "billing refuses %s: %s %s", sc.Waybill, verdict.ReasonCode, verdict.Message)
	}
	ds, err := s.ds.DeliveryStatus(ctx, sc.Waybill)
	if err != nil {
		return c, err
	}
	switch ds.Status {
	case hub.DeliveryOutForDelivery:
		return c, hub.Refuse(hub.CodeOutForDelivery, "%s is out for delivery", sc.Waybill)
	case hub.DeliveryDelivered:
		return c, hub.Refuse(hub.CodeDelivered, "%s was delivered", sc.Waybill)
	case hub.DeliveryCancelled:
		return c, hub.Refuse(hub.CodeCancelled, "%s was cancelled %s", sc.Waybill, ds.Reason)
	case hub.DeliveryOnHold:
		return c, hub.Refuse(hub.CodeOnHold, "%s is on hold %s", sc.Waybill, ds.Reason)
	}
	if c.route, err = s.ds.Route(ctx, c.waybill.Origin, c.waybill.Destination); err != nil {
		return c, err
	}
	if !slices.Contains(c.route, sc.Station) {
		return c, hub.Refuse(hub.CodeWrongStation, "%s travels %v, not through %s", sc.Waybill, c.route, sc.Station)
	}
	return c, nil
}

// Inbound takes a parcel in at a station.
func (s *Service) Inbound(ctx context.Context, sc Scan) (InboundResult, error) {
	var out InboundResult
	if err := sc.validate(); err != nil {
		return out, err
	}
	a := sc.attempt(hub.OpInbound)
	if ok, err := s.replay(ctx, a.key, &out); ok || err != nil {
		return out, err
	}
	c, err := s.check(ctx, sc, hub.OpInbound)
	if err != nil {
		return out, s.refuseErr(ctx, a, err)
	}
	err = s.commit(ctx, a, &out, func(ctx context.Context, tx *store.Tx, woID string, at time.Time) ([]hub.TrackingEvent, error) {
		if err := notInContainer(ctx, tx, sc.Waybill); err != nil {
			return nil, err
		}
		out = InboundResult{WorkOrderID: woID, Waybill: sc.Waybill, Station: sc.Station, Status: hub.ParcelInbound,
			Destination: c.waybill.Destination, Route: c.route, At: at}
		err := tx.PutParcel(ctx, store.Parcel{Waybill: sc.Waybill, Status: hub.ParcelInbound, Station: sc.Station,
			Destination: c.waybill.Destination, Type: c.waybill.Type, Service: c.waybill.Service, UpdatedAt: at})
		return []hub.TrackingEvent{a.event(sc.Waybill, hub.ArrivalCode(c.station.Kind), at)}, err
	})
	return out, err
}

// notInContainer refuses to take in or sort a parcel that is still in a
// container: the container must be unpacked first, or its contents would
// no longer match what the container says it holds.
func notInContainer(ctx context.Context, tx *store.Tx, waybill string) error {
	p, err := tx.Parcel(ctx, waybill, true)
	switch {
	case isNotFound(err):
		return nil
	case err != nil:
		return err
	case p.Container != "":
		return hub.Refuse(hub.CodeAlreadyPacked, "%s is in container %s; unpack it first", waybill, p.Container)
	}
	return nil
}

// refuseErr records err when it is a refusal and returns it either way.
func (s *Service) refuseErr(ctx context.Context, a attempt, err error) error {
	if r, ok := hub.AsRefusal(err); ok {
		return s.refuse(ctx, a, r)
	}
	return err
}

// SortResult is where a parcel goes: its chute and next hop. Reason is set
// when the parcel goes to the exception chute.
type SortResult struct {
	WorkOrderID string    `json:"workOrderId,omitempty"`
	Waybill     string    `json:"waybill"`
	Station     string    `json:"station"`
	Chute       string    `json:"chute"`
	NextHop     string    `json:"nextHop"`
	PlanVersion int64     `json:"planVersion"`
	Reason      string    `json:"reason,omitempty"`
	At          time.Time `json:"at"`
}

// Decide computes a parcel's chute and next hop at a station without
// writing anything: the checks, then the station's current sort plan. When
// no rule takes the parcel it returns the exception chute together with a
// no_rule refusal.
func (s *Service) Decide(ctx context.Context, sc Scan) (SortResult, error) {
	res, _, err := s.decide(ctx, sc)
	return res, err
}

func (s *Service) decide(ctx context.Context, sc Scan) (SortResult, hub.Waybill, error) {
	res := SortResult{Waybill: sc.Waybill, Station: sc.Station}
	c, err := s.check(ctx, sc, hub.OpSort)
	if err != nil {
		return res, c.waybill, err
	}
	plan, err := s.ds.SortPlan(ctx, sc.Station)
	if err != nil {
		return res, c.waybill, err
	}
	res.PlanVersion = plan.Version
	rule, ok := plan.Decide(c.waybill)
	if !ok {
		res.Chute, res.Reason = plan.ExceptionChute, hub.CodeNoRule
		return res, c.waybill, hub.Refuse(hub.CodeNoRule, "no rule of %s v%d takes %s (%s/%s to %s)", sc.Station, plan.Version,
			sc.Waybill, c.waybill.Type, c.waybill.Service, c.waybill.Destination)
	}
	res.Chute, res.NextHop = rule.Chute, rule.NextHop
	return res, c.waybill, nil
}

// Sort decides a parcel's chute and next hop and records the sort. With a
// no_rule refusal the result still names the exception chute.
func (s *Service) Sort(ctx context.Context, sc Scan) (SortResult, error) {
	var out SortResult
	if err := sc.validate(); err != nil {
		return out, err
	}
	a := sc.attempt(hub.OpSort)
	if ok, err := s.replay(ctx, a.key, &out); ok || err != nil {
		return out, err
	}
	res, wb, err := s.decide(ctx, sc)
	if err != nil {
		res.At = s.now().UTC()
		return res, s.refuseErr(ctx, a, err)
	}
	err = s.commit(ctx, a, &out, func(ctx context.Context, tx *store.Tx, woID string, at time.Time) ([]hub.TrackingEvent, error) {
		if err := notInContainer(ctx, tx, sc.Waybill); err != nil {
			return nil, err
		}
		out = res
		out.WorkOrderID, out.At = woID, at
		err := tx.PutParcel(ctx, store.Parcel{Waybill: sc.Waybill, Status: hub.ParcelSorted, Station: sc.Station,
			Destination: wb.Destination, Type: wb.Type, Service: wb.Service, NextHop: res.NextHop, Chute: res.Chute,
			UpdatedAt: at})
		ev := a.event(sc.Waybill, hub.EventSorted, at)
		ev.Description = "chute " + res.Chute + " to " + res.NextHop
		return []hub.TrackingEvent{ev}, err
	})
	return out, err
}
