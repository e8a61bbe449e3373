package ops

import (
	"context"
	"errors"
	"time"

	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/hub/store"
)

// NewContainer asks for a container at a station bound for a destination.
type NewContainer struct {
	Station     string `json:"station"`
	Kind        string `json:"kind"`
	Destination string `json:"destination"`
	Operator    string `json:"operator"`
}

// CreateContainer opens a bag or cage. Its id is also its barcode.
func (s *Service) CreateContainer(ctx context.Context, req NewContainer) (store.Container, error) {
	if err := required("station", req.Station, "kind", req.Kind, "destination", req.Destination); err != nil {
		return store.Container{}, err
	}
	prefix := map[string]string{hub.ContainerBag: "BAG-", hub.ContainerCage: "CAGE-"}[req.Kind]
	if prefix == "" {
		return store.Container{}, hub.Refuse(hub.CodeInvalidBody, "kind must be bag or cage, not %q", req.Kind)
	}
	if _, err := s.ds.Station(ctx, req.Station); err != nil {
		return store.Container{}, err
	}
	if _, err := s.ds.Station(ctx, req.Destination); err != nil {
		return store.Container{}, err
	}
	now := s.now().UTC()
	c := store.Container{ID: newID(prefix + req.Station + "-")[:len(prefix)+len(req.Station)+1+12],
		Kind: req.Kind, Station: req.Station, Destination: req.Destination, State: hub.ContainerOpen,
		CreatedAt: now, UpdatedAt: now}
	err := s.st.InTx(ctx, func(tx *store.Tx) error { return tx.InsertContainer(ctx, c) })
	return c, err
}

// AddItem is one scan of a parcel (Waybill) or a container (Child) into a
// container.
type AddItem struct {
	Container string `json:"-"`
	Waybill   string `json:"waybill"`
	Child     string `json:"container"`
	Station   string `json:"station"`
	Operator  string `json:"operator"`
	Device    string `json:"device"`
	ScanID    string `json:"scanId"`
}

// PackResult is the answer to packing a parcel or a container.
type PackResult struct {
	WorkOrderID string    `json:"workOrderId"`
	Container   string    `json:"container"`
	Waybill     string    `json:"waybill,omitempty"`
	Child       string    `json:"child,omitempty"`
	At          time.Time `json:"at"`
}

// refusedState is the refusal for an operation that needs an open container.
func refusedState(c store.Container) error {
	if c.State == hub.ContainerSealed {
		return hub.Refuse(hub.CodeContainerSealed, "container %s is sealed", c.ID)
	}
	return hub.Refuse(hub.CodeContainerClosed, "container %s is %s", c.ID, c.State)
}

// Pack adds a parcel to an open container whose destination is the
// parcel's next hop, or nests a sealed container with the same
// destination in it.
func (s *Service) Pack(ctx context.Context, req AddItem) (PackResult, error) {
	var out PackResult
	if (req.Waybill == "") == (req.Child == "") {
		return out, hub.Refuse(hub.CodeInvalidBody, "give either waybill or container")
	}
	if err := required("operator", req.Operator); err != nil {
		return out, err
	}
	item := req.Waybill + req.Child
	if err := barcode("item", item); err != nil {
		return out, err
	}
	if err := barcode("container", req.Container); err != nil {
		return out, err
	}
	a := attempt{key: idemKey(req.Container, hub.OpPack, item, req.ScanID), kind: hub.OpPack, station: req.Station,
		waybill: req.Waybill, container: req.Container, operator: req.Operator, device: req.Device}
	if ok, err := s.replay(ctx, a.key, &out); ok || err != nil {
		return out, err
	}
	if a.station == "" {
		// The refusal needs the station for the history; the container knows it.
		if c, err := s.st.Container(ctx, req.Container); err == nil {
			a.station = c.Station
		}
	}
	err := s.commit(ctx, a, &out, func(ctx context.Context, tx *store.Tx, woID string, at time.Time) ([]hub.TrackingEvent, error) {
		c, err := tx.Container(ctx, req.Container, true)
		if err != nil {
			return nil, notFound(err, hub.CodeUnknownContainer, "no container %s", req.Container)
		}
		if req.Station != "" && req.Station != c.Station {
			return nil, hub.Refuse(hub.CodeWrongStation, "container %s is at %s, not %s", c.ID, c.Station, req.Station)
		}
		if c.State != hub.ContainerOpen {
			return nil, refusedState(c)
		}
		out = PackResult{WorkOrderID: woID, Container: c.ID, Waybill: req.Waybill, Child: req.Child, At: at}
		if req.Waybill != "" {
			return packParcel(ctx, tx, a, c, req.Waybill, at)
		}
		return packChild(ctx, tx, a, c, req.Child, at)
	})
	return out, err
}

func packParcel(ctx context.Context, tx *store.Tx, a attempt, c store.Container, waybill string, at time.Time) ([]hub.TrackingEvent, error) {
	p, err := tx.Parcel(ctx, waybill, true)
	if err != nil {
		return nil, notFound(err, hub.CodeUnknownWaybill, "%s was never taken in at this hub", waybill)
	}
	switch {
	case p.Station != c.Station:
		return nil, hub.Refuse(hub.CodeWrongStation, "%s is at %s, container %s at %s", waybill, p.Station, c.ID, c.Station)
	case p.Container != "":
		return nil, hub.Refuse(hub.CodeAlreadyPacked, "%s is already in container %s", waybill, p.Container)
	case p.NextHop == "":
		return nil, hub.Refuse(hub.CodeNotSorted, "%s has not been sorted at %s", waybill, c.Station)
	case p.NextHop != c.Destination:
		return nil, hub.Refuse(hub.CodeMisroute, "%s goes to %s, container %s to %s", waybill, p.NextHop, c.ID, c.Destination)
	}
	p.Status, p.Container, p.UpdatedAt = hub.ParcelPacked, c.ID, at
	if err := tx.PutParcel(ctx, p); err != nil {
		return nil, err
	}
	if err := tx.AddItem(ctx, c.ID, store.Item{Kind: store.ItemParcel, ID: waybill, AddedAt: at}); err != nil {
		return nil, err
	}
	return []hub.TrackingEvent{a.event(waybill, hub.EventPacked, at)}, nil
}

func packChild(ctx context.Context, tx *store.Tx, a attempt, c store.Container, id string, at time.Time) ([]hub.TrackingEvent, error) {
	child, err := tx.Container(ctx, id, true)
	if err != nil {
		return nil, notFound(err, hub.CodeUnknownContainer, "no container %s", id)
	}
	switch {
	case child.ID == c.ID:
		return nil, hub.Refuse(hub.CodeInvalidBody, "a container cannot hold itself")
	case child.Station != c.Station:
		return nil, hub.Refuse(hub.CodeWrongStation, "container %s is at %s, %s at %s", child.ID, child.Station, c.ID, c.Station)
	case child.Parent != "":
		return nil, hub.Refuse(hub.CodeAlreadyPacked, "container %s is already in %s", child.ID, child.Parent)
	case child.State == hub.ContainerOpen:
		// Only sealed containers nest, which also rules out cycles: the
		// parent is open, so it cannot be inside the sealed child.
		return nil, hub.Refuse(hub.CodeNotSealed, "container %s must be sealed before it is nested", child.ID)
	case child.State != hub.ContainerSealed:
		return nil, hub.Refuse(hub.CodeContainerClosed, "container %s is %s", child.ID, child.State)
	case child.Destination != c.Destination:
		return nil, hub.Refuse(hub.CodeMisroute, "container %s goes to %s, %s to %s", child.ID, child.Destination, c.ID, c.Destination)
	}
	child.Parent, child.UpdatedAt = c.ID, at
	if err := tx.UpdateContainer(ctx, child); err != nil {
		return nil, err
	}
	if err := tx.AddItem(ctx, c.ID, store.Item{Kind: store.ItemContainer, ID: child.ID, AddedAt: at}); err != nil {
		return nil, err
	}
	waybills, err := contents(ctx, tx, child.ID)
	if err != nil {
		return nil, err
	}
	events := make([]hub.TrackingEvent, 0, len(waybills))
	for _, w := range waybills {
		events = append(events, a.event(w, hub.EventPacked, at))
	}
	return events, nil
}

// contents lists every parcel in a container, nested ones included.
func contents(ctx context.Context, tx *store.Tx, id string) ([]string, error) {
	var out []string
	err := walk(ctx, tx, id, func(c store.Container, parcels []store.Parcel) error {
		for _, p := range parcels {
			out = append(out, p.Waybill)
		}
		return nil
	})
	return out, err
}

// walk visits a container and every container nested in it, depth first,
// with the parcels packed directly in each.
func walk(ctx context.Context, tx *store.Tx, id string, visit func(c store.Container, parcels []store.Parcel) error) error {
	c, err := tx.Container(ctx, id, false)
	if err != nil {
		return err
	}
	parcels, err := tx.ParcelsIn(ctx, id)
	if err != nil {
		return err
	}
	if err := visit(c, parcels); err != nil {
		return err
	}
	children, err := tx.Children(ctx, id)
	if err != nil {
		return err
	}
	for _, ch := range children {
		if err := walk(ctx, tx, ch.ID, visit); err != nil {
			return err
		}
	}
	return nil
}

// Action is a scan of a container: seal, receive or unpack.
type Action struct {
	Container  string `json:"-"`
	Station    string `json:"station"`
	Operator   string `json:"operator"`
	Device     string `json:"device"`
	SealNumber string `json:"sealNumber"`
	ScanID     string `json:"scanId"`
}

// ContainerResult is the answer to a container action.
type ContainerResult struct {
	WorkOrderID string    `json:"workOrderId"`
	Container   string    `json:"container"`
	State       string    `json:"state"`
	Station     string    `json:"station"`
	SealNumber  string    `json:"sealNumber,omitempty"`
	Waybills    []string  `json:"waybills"`
	At          time.Time `json:"at"`
}

func (s *Service) actionAttempt(ctx context.Context, kind string, req Action) (attempt, error) {
	if err := required("operator", req.Operator); err != nil {
		return attempt{}, err
	}
	if err := barcode("container", req.Container); err != nil {
		return attempt{}, err
	}
	a := attempt{key: idemKey(req.Container, kind, req.Station, req.ScanID), kind: kind, station: req.Station,
		container: req.Container, operator: req.Operator, device: req.Device}
	if a.station == "" {
		c, err := s.st.Container(ctx, req.Container)
		if err != nil {
			return a, notFound(err, hub.CodeUnknownContainer, "no container %s", req.Container)
		}
		a.station = c.Station
	}
	return a, nil
}

// Seal closes an open, non-empty container with a seal number (one is
// drawn when none is given); its parcels become sealed.
func (s *Service) Seal(ctx context.Context, req Action) (ContainerResult, error) {
	var out ContainerResult
	a, err := s.actionAttempt(ctx, hub.OpSeal, req)
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
		if c.Station != a.station {
			return nil, hub.Refuse(hub.CodeWrongStation, "container %s is at %s, not %s", c.ID, c.Station, a.station)
		}
		if c.State != hub.ContainerOpen {
			return nil, refusedState(c)
		}
		parcels, err := tx.ParcelsIn(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		children, err := tx.Children(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		if len(parcels) == 0 && len(children) == 0 {
			return nil, hub.Refuse(hub.CodeContainerEmpty, "container %s is empty", c.ID)
		}
		c.State, c.SealNumber, c.SealedAt, c.UpdatedAt = hub.ContainerSealed, req.SealNumber, &at, at
		if c.SealNumber == "" {
			c.SealNumber = newID("SL")[:12]
		}
		if err := tx.UpdateContainer(ctx, c); err != nil {
			return nil, err
		}
		out = ContainerResult{WorkOrderID: woID, Container: c.ID, State: c.State, Station: c.Station,
			SealNumber: c.SealNumber, Waybills: []string{}, At: at}
		var events []hub.TrackingEvent
		for _, p := range parcels {
			p.Status, p.UpdatedAt = hub.ParcelSealed, at
			if err := tx.PutParcel(ctx, p); err != nil {
				return nil, err
			}
			out.Waybills = append(out.Waybills, p.Waybill)
			ev := a.event(p.Waybill, hub.EventSealed, at)
			ev.Description = "seal " + c.SealNumber
			events = append(events, ev)
		}
		return events, nil
	})
	return out, err
}

// isNotFound reports whether err is the store's not-found.
func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
