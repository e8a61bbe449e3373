package ops

import (
	"context"
	"time"

	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/hub/store"
)

// Receive takes a handed-over container in at its destination: it and the
// containers nested in it become received there, and every parcel inside
// arrives at the station.
func (s *Service) Receive(ctx context.Context, req Action) (ContainerResult, error) {
	var out ContainerResult
	if err := required("station", req.Station); err != nil {
		return out, err
	}
	a, err := s.actionAttempt(ctx, hub.OpReceive, req)
	if err != nil {
		return out, err
	}
	if ok, err := s.replay(ctx, a.key, &out); ok || err != nil {
		return out, err
	}
	st, err := s.ds.Station(ctx, req.Station)
	if err != nil {
		return out, err
	}
	err = s.commit(ctx, a, &out, func(ctx context.Context, tx *store.Tx, woID string, at time.Time) ([]hub.TrackingEvent, error) {
		c, err := tx.Container(ctx, req.Container, true)
		if err != nil {
			return nil, notFound(err, hub.CodeUnknownContainer, "no container %s", req.Container)
		}
		switch {
		case c.Parent != "":
			return nil, hub.Refuse(hub.CodeAlreadyPacked, "container %s is inside %s; receive %s", c.ID, c.Parent, c.Parent)
		case c.State == hub.ContainerOpen || c.State == hub.ContainerSealed:
			return nil, hub.Refuse(hub.CodeNotHandedOver, "container %s is %s at %s, not on its way", c.ID, c.State, c.Station)
		case c.State != hub.ContainerHandedOver:
			return nil, refusedState(c)
		case c.Destination != req.Station:
			return nil, hub.Refuse(hub.CodeMisroute, "container %s is bound for %s, not %s", c.ID, c.Destination, req.Station)
		}
		out = ContainerResult{WorkOrderID: woID, Container: c.ID, State: hub.ContainerReceived, Station: req.Station,
			SealNumber: c.SealNumber, Waybills: []string{}, At: at}
		var events []hub.TrackingEvent
		err = walk(ctx, tx, c.ID, func(n store.Container, parcels []store.Parcel) error {
			n.State, n.Station, n.UpdatedAt = hub.ContainerReceived, req.Station, at
			if err := tx.UpdateContainer(ctx, n); err != nil {
				return err
			}
			for _, p := range parcels {
				p.Status, p.Station, p.NextHop, p.Chute, p.UpdatedAt = hub.ParcelReceived, req.Station, "", "", at
				if err := tx.PutParcel(ctx, p); err != nil {
					return err
				}
				out.Waybills = append(out.Waybills, p.Waybill)
				events = append(events, a.event(p.Waybill, hub.ArrivalCode(st.Kind), at))
			}
			return nil
		})
		return events, err
	})
	return out, err
}

// Unpack opens a received container: the parcels packed directly in it
// become inbound at the station, and nested containers stand on their own,
// received, to be unpacked in turn.
func (s *Service) Unpack(ctx context.Context, req Action) (ContainerResult, error) {
	var out ContainerResult
	a, err := s.actionAttempt(ctx, hub.OpUnpack, req)
	if err != nil {
		return out, err
	}
	if ok, err := s.replay(ctx, a.key, &out); ok || err != nil {
		return out, err
	}
	err = s.commit(ctx, a, &out, func(ctx context.Context, tx *store.Tx, woID string, at time.Time) ([]hub.TrackingEvent, error) {
		c, err := tx.Container(ctx, req.Container, true)
		if err != nil {
			return nil, notFound(err, hub.CodeUnknownContainer, "no container %s", req.Container)
		}
		switch {
		case c.State == hub.ContainerUnpacked:
			return nil, refusedState(c)
		case c.State != hub.ContainerReceived:
			return nil, hub.Refuse(hub.CodeNotReceived, "container %s is %s, not received", c.ID, c.State)
		case c.Parent != "":
			return nil, hub.Refuse(hub.CodeAlreadyPacked, "container %s is inside %s; unpack %s first", c.ID, c.Parent, c.Parent)
		case c.Station != a.station:
			return nil, hub.Refuse(hub.CodeWrongStation, "container %s is at %s, not %s", c.ID, c.Station, a.station)
		}
		c.State, c.UpdatedAt = hub.ContainerUnpacked, at
		if err := tx.UpdateContainer(ctx, c); err != nil {
			return nil, err
		}
		out = ContainerResult{WorkOrderID: woID, Container: c.ID, State: c.State, Station: c.Station,
			SealNumber: c.SealNumber, Waybills: []string{}, At: at}
		parcels, err := tx.ParcelsIn(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		var events []hub.TrackingEvent
		for _, p := range parcels {
			p.Status, p.Container, p.UpdatedAt = hub.ParcelInbound, "", at
			if err := tx.PutParcel(ctx, p); err != nil {
				return nil, err
			}
			out.Waybills = append(out.Waybills, p.Waybill)
			events = append(events, a.event(p.Waybill, hub.EventUnpacked, at))
		}
		children, err := tx.Children(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		for _, ch := range children {
			ch.Parent, ch.UpdatedAt = "", at
			if err := tx.UpdateContainer(ctx, ch); err != nil {
				return nil, err
			}
		}
		return events, nil
	})
	return out, err
}
