package ops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/hub/store"
)

// NewHandover hands sealed containers and/or parcels to a linehaul trip
// (containers only, with the vehicle's seal number), a courier, a 3PL or
// the receiver collecting at the station.
type NewHandover struct {
	Station      string   `json:"station"`
	Kind         string   `json:"kind"`
	TripID       string   `json:"tripId"`
	SealNumber   string   `json:"sealNumber"`
	Counterparty string   `json:"counterparty"`
	Containers   []string `json:"containers"`
	Waybills     []string `json:"waybills"`
	Operator     string   `json:"operator"`
	Device       string   `json:"device"`
	RequestID    string   `json:"requestId"`
}

// ManifestLine is one item of a handover's manifest.
type ManifestLine struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

// HandoverResult is the recorded handover.
type HandoverResult struct {
	ID           string         `json:"id"`
	WorkOrderID  string         `json:"workOrderId"`
	Kind         string         `json:"kind"`
	Station      string         `json:"station"`
	TripID       string         `json:"tripId,omitempty"`
	SealNumber   string         `json:"sealNumber,omitempty"`
	Counterparty string         `json:"counterparty,omitempty"`
	PreAlertID   string         `json:"preAlertId,omitempty"`
	Manifest     []ManifestLine `json:"manifest"`
	Waybills     []string       `json:"waybills"`
	At           time.Time      `json:"at"`
}

func (req NewHandover) validate() error {
	if err := required("station", req.Station, "kind", req.Kind, "operator", req.Operator); err != nil {
		return err
	}
	if len(req.Containers)+len(req.Waybills) == 0 {
		return hub.Refuse(hub.CodeInvalidBody, "a handover needs containers or waybills")
	}
	switch req.Kind {
	case hub.HandoverLinehaul:
		if err := required("tripId", req.TripID, "sealNumber", req.SealNumber); err != nil {
			return err
		}
		if len(req.Waybills) > 0 {
			return hub.Refuse(hub.CodeInvalidBody, "a linehaul carries sealed containers, not loose parcels")
		}
	case hub.Handover3PL:
		if err := required("counterparty", req.Counterparty); err != nil {
			return err
		}
	case hub.HandoverCourier, hub.HandoverSelfPickup:
	default:
		return hub.Refuse(hub.CodeInvalidBody, "kind must be linehaul, courier, 3pl or self_pickup, not %q", req.Kind)
	}
	for _, id := range append(slices.Clone(req.Containers), req.Waybills...) {
		if err := barcode("item", id); err != nil {
			return err
		}
	}
	return nil
}

// key identifies the handover: the client's request id, or what is handed
// to whom.
func (req NewHandover) key() string {
	if req.RequestID != "" {
		return idemKey(req.Station, hub.OpHandover, req.RequestID)
	}
	items := append(slices.Sorted(slices.Values(req.Containers)), slices.Sorted(slices.Values(req.Waybills))...)
	sum := sha256.Sum256([]byte(req.Kind + "|" + req.TripID + "|" + req.Counterparty + "|" + strings.Join(items, ",")))
	return idemKey(req.Station, hub.OpHandover, hex.EncodeToString(sum[:]))
}

// Handover records a handover with its manifest. For a linehaul it first
// checks the load and announces it to linehaul with a pre-alert (idempotent
// by the handover id), then records it; the containers and everything in
// them become handed over.
func (s *Service) Handover(ctx context.Context, req NewHandover) (HandoverResult, error) {
	var out HandoverResult
	if err := req.validate(); err != nil {
		return out, err
	}
	a := attempt{key: req.key(), kind: hub.OpHandover, station: req.Station, operator: req.Operator, device: req.Device}
	if len(req.Waybills) == 1 && len(req.Containers) == 0 {
		a.waybill = req.Waybills[0]
	}
	if len(req.Containers) == 1 && len(req.Waybills) == 0 {
		a.container = req.Containers[0]
	}
	if ok, err := s.replay(ctx, a.key, &out); ok || err != nil {
		return out, err
	}
	st, err := s.ds.Station(ctx, req.Station)
	if err != nil {
		return out, err
	}
	sum := sha256.Sum256([]byte(a.key))
	id := "HO-" + strings.ToUpper(hex.EncodeToString(sum[:8]))
	var trip hub.Trip
	preAlert := ""
	if req.Kind == hub.HandoverLinehaul {
		if trip, err = s.ds.Trip(ctx, req.TripID); err != nil {
			return out, err
		}
		if trip.Origin != req.Station {
			return out, s.refuse(ctx, a, hub.Refuse(hub.CodeWrongStation, "trip %s leaves from %s, not %s", trip.ID, trip.Origin, req.Station))
		}
		var pa hub.PreAlert
		err := s.st.InTx(ctx, func(tx *store.Tx) error {
			var err error
			pa, err = checkLoad(ctx, tx, req, trip)
			return err
		})
		if err != nil {
			return out, s.refuseErr(ctx, a, err)
		}
		pa.RequestID = id
		if preAlert, err = s.ds.CreatePreAlert(ctx, pa); err != nil {
			return out, err
		}
	}
	err = s.commit(ctx, a, &out, func(ctx context.Context, tx *store.Tx, woID string, at time.Time) ([]hub.TrackingEvent, error) {
		// Checked again under the transaction's locks: the state may have
		// moved between the pre-alert and now.
		if _, err := checkLoad(ctx, tx, req, trip); err != nil {
			return nil, err
		}
		out = HandoverResult{ID: id, WorkOrderID: woID, Kind: req.Kind, Station: req.Station, TripID: req.TripID,
			SealNumber: req.SealNumber, Counterparty: req.Counterparty, PreAlertID: preAlert, Waybills: []string{}, At: at}
		h := store.Handover{ID: id, Kind: req.Kind, Station: req.Station, TripID: req.TripID, SealNumber: req.SealNumber,
			Counterparty: req.Counterparty, PreAlertID: preAlert, Operator: req.Operator, Device: req.Device, CreatedAt: at}
		status := map[string]string{hub.HandoverLinehaul: hub.ParcelInTransit, hub.HandoverCourier: hub.ParcelOutForDelivery,
			hub.Handover3PL: hub.ParcelWith3PL, hub.HandoverSelfPickup: hub.ParcelCollected}[req.Kind]
		code := hub.HandoverCode(req.Kind, st.Kind)
		var events []hub.TrackingEvent
		move := func(p store.Parcel, container string) error {
			p.Status, p.UpdatedAt = status, at
			if err := tx.PutParcel(ctx, p); err != nil {
				return err
			}
			out.Waybills = append(out.Waybills, p.Waybill)
			ev := a.event(p.Waybill, code, at)
			ev.Container, ev.Description = container, req.Kind+" "+req.TripID+req.Counterparty
			events = append(events, ev)
			return nil
		}
		for _, cid := range req.Containers {
			h.Manifest = append(h.Manifest, store.Item{Kind: store.ItemContainer, ID: cid})
			out.Manifest = append(out.Manifest, ManifestLine{Kind: store.ItemContainer, ID: cid})
			err := walk(ctx, tx, cid, func(c store.Container, parcels []store.Parcel) error {
				c.State, c.HandoverID, c.UpdatedAt = hub.ContainerHandedOver, id, at
				if err := tx.UpdateContainer(ctx, c); err != nil {
					return err
				}
				for _, p := range parcels {
					if err := move(p, cid); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
		for _, w := range req.Waybills {
			h.Manifest = append(h.Manifest, store.Item{Kind: store.ItemParcel, ID: w})
			out.Manifest = append(out.Manifest, ManifestLine{Kind: store.ItemParcel, ID: w})
			p, err := tx.Parcel(ctx, w, true)
			if err != nil {
				return nil, err
			}
			if err := move(p, ""); err != nil {
				return nil, err
			}
		}
		return events, tx.InsertHandover(ctx, h)
	})
	return out, err
}

// checkLoad refuses a handover whose containers or parcels cannot go, and
// returns the pre-alert describing the containers.
func checkLoad(ctx context.Context, tx *store.Tx, req NewHandover, trip hub.Trip) (hub.PreAlert, error) {
	pa := hub.PreAlert{TripID: req.TripID, Origin: req.Station, SealNumber: req.SealNumber}
	for _, cid := range req.Containers {
		c, err := tx.Container(ctx, cid, true)
		if err != nil {
			return pa, notFound(err, hub.CodeUnknownContainer, "no container %s", cid)
		}
		switch {
		case c.Station != req.Station:
			return pa, hub.Refuse(hub.CodeWrongStation, "container %s is at %s, not %s", c.ID, c.Station, req.Station)
		case c.Parent != "":
			return pa, hub.Refuse(hub.CodeAlreadyPacked, "container %s is inside %s; hand over %s", c.ID, c.Parent, c.Parent)
		case c.State == hub.ContainerOpen:
			return pa, hub.Refuse(hub.CodeNotSealed, "container %s is not sealed", c.ID)
		case c.State != hub.ContainerSealed:
			return pa, hub.Refuse(hub.CodeContainerClosed, "container %s is %s", c.ID, c.State)
		case req.Kind == hub.HandoverLinehaul && c.Destination != trip.Destination:
			return pa, hub.Refuse(hub.CodeMisroute, "container %s goes to %s, trip %s to %s", c.ID, c.Destination, trip.ID, trip.Destination)
		}
		pc := hub.PreAlertContainer{ID: c.ID, Kind: c.Kind, Destination: c.Destination, SealNumber: c.SealNumber}
		parcels, err := tx.ParcelsIn(ctx, c.ID)
		if err != nil {
			return pa, err
		}
		for _, p := range parcels {
			pc.Waybills = append(pc.Waybills, p.Waybill)
		}
		children, err := tx.Children(ctx, c.ID)
		if err != nil {
			return pa, err
		}
		for _, ch := range children {
			pc.Children = append(pc.Children, ch.ID)
		}
		pa.Containers = append(pa.Containers, pc)
	}
	for _, w := range req.Waybills {
		p, err := tx.Parcel(ctx, w, true)
		if err != nil {
			return pa, notFound(err, hub.CodeUnknownWaybill, "%s was never taken in at this hub", w)
		}
		switch {
		case p.Station != req.Station:
			return pa, hub.Refuse(hub.CodeWrongStation, "%s is at %s, not %s", w, p.Station, req.Station)
		case p.Container != "":
			return pa, hub.Refuse(hub.CodeAlreadyPacked, "%s is in container %s", w, p.Container)
		case p.Status == hub.ParcelOutForDelivery:
			return pa, hub.Refuse(hub.CodeOutForDelivery, "%s is out for delivery", w)
		case p.Status == hub.ParcelCollected || p.Status == hub.ParcelWith3PL:
			return pa, hub.Refuse(hub.CodeContainerClosed, "%s was already handed over", w)
		case req.Kind != hub.Handover3PL && p.Destination != req.Station:
			return pa, hub.Refuse(hub.CodeMisroute, "%s is for %s, not for delivery from %s", w, p.Destination, req.Station)
		}
	}
	return pa, nil
}
