package ops

import (
	"context"
	"time"

	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/hub/store"
)

// HistoryLine is one work order in a parcel's history.
type HistoryLine struct {
	WorkOrderID string    `json:"workOrderId"`
	Kind        string    `json:"kind"`
	Station     string    `json:"station"`
	At          time.Time `json:"at"`
	Operator    string    `json:"operator"`
	Device      string    `json:"device,omitempty"`
	Result      string    `json:"result"`
	Reason      string    `json:"reason,omitempty"`
	Container   string    `json:"container,omitempty"`
}

// ParcelView is a parcel's status and full history.
type ParcelView struct {
	Waybill     string        `json:"waybill"`
	Status      string        `json:"status"`
	Station     string        `json:"station,omitempty"`
	Destination string        `json:"destination,omitempty"`
	NextHop     string        `json:"nextHop,omitempty"`
	Chute       string        `json:"chute,omitempty"`
	Container   string        `json:"container,omitempty"`
	History     []HistoryLine `json:"history"`
}

// StatusNotReceived is the status of a parcel the hub only ever refused.
const StatusNotReceived = "not_received"

// Parcel returns a parcel's view; unknown_waybill when the hub has no
// record of it at all.
func (s *Service) Parcel(ctx context.Context, waybill string) (ParcelView, error) {
	v := ParcelView{Waybill: waybill, Status: StatusNotReceived, History: []HistoryLine{}}
	p, err := s.st.Parcel(ctx, waybill)
	if err != nil && !isNotFound(err) {
		return v, err
	}
	hist, herr := s.st.History(ctx, waybill)
	if herr != nil {
		return v, herr
	}
	if err != nil && len(hist) == 0 {
		return v, hub.Refuse(hub.CodeUnknownWaybill, "the hub has no record of %s", waybill)
	}
	if err == nil {
		v.Status, v.Station, v.Destination, v.NextHop, v.Chute, v.Container =
			p.Status, p.Station, p.Destination, p.NextHop, p.Chute, p.Container
	}
	for _, h := range hist {
		v.History = append(v.History, HistoryLine{WorkOrderID: h.WorkOrderID, Kind: h.Kind, Station: h.Station, At: h.At,
			Operator: h.Operator, Device: h.Device, Result: h.Result, Reason: h.Reason, Container: h.Container})
	}
	return v, nil
}

// ContainerView is a container with what was packed into it and what is
// in it now.
type ContainerView struct {
	ID          string         `json:"id"`
	Kind        string         `json:"kind"`
	Station     string         `json:"station"`
	Destination string         `json:"destination"`
	Parent      string         `json:"parent,omitempty"`
	State       string         `json:"state"`
	SealNumber  string         `json:"sealNumber,omitempty"`
	SealedAt    *time.Time     `json:"sealedAt,omitempty"`
	HandoverID  string         `json:"handoverId,omitempty"`
	CreatedAt   time.Time      `json:"createdAt"`
	Items       []ManifestLine `json:"items"`
	// Waybills are the parcels packed directly in the container now.
	Waybills []string `json:"waybills"`
}

// NewContainerView renders a stored container without its items.
func NewContainerView(c store.Container) ContainerView {
	return ContainerView{ID: c.ID, Kind: c.Kind, Station: c.Station, Destination: c.Destination, Parent: c.Parent,
		State: c.State, SealNumber: c.SealNumber, SealedAt: c.SealedAt, HandoverID: c.HandoverID,
		CreatedAt: c.CreatedAt, Items: []ManifestLine{}, Waybills: []string{}}
}

// Container returns a container's view; unknown_container when there is none.
func (s *Service) Container(ctx context.Context, id string) (ContainerView, error) {
	c, err := s.st.Container(ctx, id)
	if err != nil {
		return ContainerView{}, notFound(err, hub.CodeUnknownContainer, "no container %s", id)
	}
	v := NewContainerView(c)
	items, err := s.st.Items(ctx, id)
	if err != nil {
		return v, err
	}
	for _, it := range items {
		v.Items = append(v.Items, ManifestLine{Kind: it.Kind, ID: it.ID})
	}
	parcels, err := s.st.ParcelsIn(ctx, id)
	for _, p := range parcels {
		v.Waybills = append(v.Waybills, p.Waybill)
	}
	return v, err
}
