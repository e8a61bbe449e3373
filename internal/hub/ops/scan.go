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

// Validate refuses a scan without station, waybill or operator
// (invalid_body) or with a waybill that cannot be a barcode
// (malformed_barcode).
func (sc Scan) Validate() error {
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
// the other: the station, the waybill, billing, the delivery status and
// the waybill's route through this station. tl, when set, records each
// step.
func (s *Service) check(ctx context.Context, sc Scan, op string, tl *Timeline) (checked, error) {
	var c checked
	var err error
	t0 := tl.begin()
	if c.station, err = s.ds.Station(ctx, sc.Station); err == nil {
		err = CheckStation(c.station)
	}
	if tl.done(StepStation, t0, err) != nil {
		return c, err
	}
	t0 = tl.begin()
	c.waybill, err = s.ds.Waybill(ctx, sc.Waybill)
	if tl.done(StepWaybill, t0, err) != nil {
		return c, err
	}
	t0 = tl.begin()
	verdict, err := s.ds.CheckBilling(ctx, sc.Waybill, sc.Station, op)
	if err == nil {
		err = CheckBilling(verdict, sc.Waybill)
	}
	if tl.done(StepBilling, t0, err) != nil {
		return c, err
	}
	t0 = tl.begin()
	ds, err := s.ds.DeliveryStatus(ctx, sc.Waybill)
	if err == nil {
		err = CheckDelivery(ds, sc.Waybill)
	}
	if tl.done(StepDelivery, t0, err) != nil {
		return c, err
	}
	t0 = tl.begin()
	if c.route, err = s.ds.Route(ctx, c.waybill.Origin, c.waybill.Destination); err == nil {
		err = CheckRoute(c.route, sc.Station, sc.Waybill)
	}
	if tl.done(StepRoute, t0, err) != nil {
		return c, err
	}
	return c, nil
}

// CheckStation refuses a station that takes no parcels (station_inactive).
func CheckStation(st hub.Station) error {
	if !st.Active {
		return hub.Refuse(hub.CodeStationInactive, "station %s takes no parcels at the moment", st.Code)
	}
	return nil
}

// CheckBilling turns billing's verdict on a waybill into billing_blocked
// when billing refuses.
func CheckBilling(v hub.BillingVerdict, waybill string) error {
	if !v.OK {
		return hub.Refuse(hub.CodeBillingBlocked, "billing refuses %s: %s %s", waybill, v.ReasonCode, v.Message)
	}
	return nil
}

// CheckDelivery refuses a parcel whose delivery status forbids handling it:
// out for delivery, delivered, cancelled or on hold.
func CheckDelivery(ds hub.DeliveryStatus, waybill string) error {
	switch ds.Status {
	case hub.DeliveryOutForDelivery:
		return hub.Refuse(hub.CodeOutForDelivery, "%s is out for delivery", waybill)
	case hub.DeliveryDelivered:
		return hub.Refuse(hub.CodeDelivered, "%s was delivered", waybill)
	case hub.DeliveryCancelled:
		return hub.Refuse(hub.CodeCancelled, "%s was cancelled %s", waybill, ds.Reason)
	case hub.DeliveryOnHold:
		return hub.Refuse(hub.CodeOnHold, "%s is on hold %s", waybill, ds.Reason)
	}
	return nil
}

// CheckRoute refuses (wrong_station) a scan at a station that is not on
// the waybill's route.
func CheckRoute(route []string, station, waybill string) error {
	if !slices.Contains(route, station) {
		return hub.Refuse(hub.CodeWrongStation, "%s travels %v, not through %s", waybill, route, station)
	}
	return nil
}

// Inbound takes a parcel in at a station.
func (s *Service) Inbound(ctx context.Context, sc Scan) (InboundResult, error) {
	var out InboundResult
	if err := sc.Validate(); err != nil {
		return out, err
	}
	a := sc.attempt(hub.OpInbound)
	if ok, err := s.replay(ctx, a.key, &out); ok || err != nil {
		return out, err
	}
	c, err := s.check(ctx, sc, hub.OpInbound, nil)
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
