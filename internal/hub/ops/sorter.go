package ops

import (
	"context"
	"time"

	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/hub/store"
)

// SortReport is what a sorting machine did with a parcel.
type SortReport struct {
	Station   string
	SorterID  string
	Barcode   string
	Chute     string
	Outcome   string // "sorted", "recirculated", "exception" or "no_read"
	RequestID string
}

// ReportResult acknowledges a sort report.
type ReportResult struct {
	WorkOrderID string `json:"workOrderId"`
	Duplicate   bool   `json:"duplicate"`
}

// ReportSorted records a machine's sort as a work order; a repeated request
// id is acknowledged as a duplicate without recording twice. A parcel
// sorted into its chute gets an HSR event; any other outcome is recorded as
// refused with the outcome as reason (and HEX), so the history shows it.
func (s *Service) ReportSorted(ctx context.Context, r SortReport) (ReportResult, error) {
	var out ReportResult
	if err := required("station", r.Station, "sorterId", r.SorterID, "requestId", r.RequestID); err != nil {
		return out, err
	}
	a := attempt{key: idemKey(r.Station, "sort-report", r.SorterID, r.RequestID), kind: hub.OpSort,
		station: r.Station, operator: r.SorterID, device: r.SorterID}
	if hub.ValidBarcode(r.Barcode) {
		a.waybill = r.Barcode
	}
	if ok, err := s.replay(ctx, a.key, &out); ok || err != nil {
		out.Duplicate = ok
		return out, err
	}
	err := s.commit(ctx, a, &out, func(ctx context.Context, tx *store.Tx, woID string, at time.Time) ([]hub.TrackingEvent, error) {
		out.WorkOrderID = woID
		if a.waybill == "" {
			return nil, nil
		}
		ev := a.event(a.waybill, hub.EventSorted, at)
		ev.Description = "sorter " + r.SorterID + " chute " + r.Chute
		if r.Outcome != "sorted" {
			ev.Code, ev.Result, ev.Reason = hub.EventException, hub.ResultRefused, r.Outcome
			return []hub.TrackingEvent{ev}, nil
		}
		p, err := tx.Parcel(ctx, a.waybill, true)
		if err == nil {
			p.Status, p.Station, p.Chute, p.UpdatedAt = hub.ParcelSorted, r.Station, r.Chute, at
			err = tx.PutParcel(ctx, p)
		} else if isNotFound(err) {
			err = nil
		}
		return []hub.TrackingEvent{ev}, err
	})
	return out, err
}
