package ops

import (
	"context"
	"time"

	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/hub/store"
)

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
	res, _, err := s.decide(ctx, sc, nil)
	return res, err
}

func (s *Service) decide(ctx context.Context, sc Scan, tl *Timeline) (SortResult, hub.Waybill, error) {
	c, err := s.check(ctx, sc, hub.OpSort, tl)
	if err != nil {
		return SortResult{Waybill: sc.Waybill, Station: sc.Station}, c.waybill, err
	}
	t0 := tl.begin()
	plan, err := s.ds.SortPlan(ctx, sc.Station)
	if tl.done(StepPlan, t0, err) != nil {
		return SortResult{Waybill: sc.Waybill, Station: sc.Station}, c.waybill, err
	}
	t0 = tl.begin()
	res, err := DecideChute(sc, c.waybill, plan)
	tl.done(StepDecide, t0, err)
	return res, c.waybill, err
}

// DecideChute is the sort decision itself: the first rule of the station's
// plan, in priority order, that takes the waybill gives the chute and next
// hop. When no rule does, the result names the plan's exception chute with
// reason no_rule, and the error is a no_rule refusal.
func DecideChute(sc Scan, wb hub.Waybill, plan hub.SortPlan) (SortResult, error) {
	res := SortResult{Waybill: sc.Waybill, Station: sc.Station, PlanVersion: plan.Version}
	rule, ok := plan.Decide(wb)
	if !ok {
		res.Chute, res.Reason = plan.ExceptionChute, hub.CodeNoRule
		return res, hub.Refuse(hub.CodeNoRule, "no rule of %s v%d takes %s (%s/%s to %s)", sc.Station, plan.Version,
			sc.Waybill, wb.Type, wb.Service, wb.Destination)
	}
	res.Chute, res.NextHop = rule.Chute, rule.NextHop
	return res, nil
}

// Sort decides a parcel's chute and next hop and records the sort. With a
// no_rule refusal the result still names the exception chute.
func (s *Service) Sort(ctx context.Context, sc Scan) (SortResult, error) {
	return s.SortTimed(ctx, sc, nil)
}

// SortTimed is Sort recording each step in tl (nil records nothing), for
// explain answers of the sequential flow.
func (s *Service) SortTimed(ctx context.Context, sc Scan, tl *Timeline) (SortResult, error) {
	if err := sc.Validate(); err != nil {
		return SortResult{}, err
	}
	if out, ok, err := s.ReplaySort(ctx, sc); ok || err != nil {
		return out, err
	}
	return s.SortNew(ctx, sc, tl)
}

// SortNew is Sort of a scan already validated and not made before (its
// caller looked for a recorded answer with ReplaySort): the checks, the
// decision, the commit; tl as in SortTimed.
func (s *Service) SortNew(ctx context.Context, sc Scan, tl *Timeline) (SortResult, error) {
	res, wb, err := s.decide(ctx, sc, tl)
	if err != nil {
		res.At = s.Now()
		return res, s.RefuseSort(ctx, sc, err)
	}
	t0 := tl.begin()
	out, err := s.CommitSort(ctx, sc, res, wb)
	tl.done(StepPersist, t0, err)
	return out, err
}

// ReplaySort returns the answer recorded for a sort scan already made
// (same station, waybill and scanId), and whether there was one.
func (s *Service) ReplaySort(ctx context.Context, sc Scan) (SortResult, bool, error) {
	var out SortResult
	ok, err := s.replay(ctx, sc.attempt(hub.OpSort).key, &out)
	return out, ok, err
}

// RefuseSort records the refused sort work order (and its HEX event) when
// err is a refusal worth recording, and returns err. Refusals that
// CommitSort returns are recorded already.
func (s *Service) RefuseSort(ctx context.Context, sc Scan, err error) error {
	return s.refuseErr(ctx, sc.attempt(hub.OpSort), err)
}

// CommitSort records a decided sort: the work order, the parcel's new
// state and its HSR tracking event, in one transaction (the transactional
// outbox). It answers the recorded result; a device that lost a race for
// the same scan answers the winner's. A refusal inside the transaction
// (already_packed) is recorded as a refused work order and returned.
func (s *Service) CommitSort(ctx context.Context, sc Scan, res SortResult, wb hub.Waybill) (SortResult, error) {
	var out SortResult
	a := sc.attempt(hub.OpSort)
	err := s.commit(ctx, a, &out, func(ctx context.Context, tx *store.Tx, woID string, at time.Time) ([]hub.TrackingEvent, error) {
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

// Now is the time work orders are stamped with, in UTC.
func (s *Service) Now() time.Time { return s.now().UTC() }
