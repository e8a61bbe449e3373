package flow

import (
	"context"
	"errors"
	"fmt"

	"github.com/waypost/waypost/dag"
	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/hub/ops"
)

// Step kinds a flows config may name, and the keys their values are
// published under.
const (
	KindCheckStation  = "check_station"  // → "station" (Check)
	KindGetWaybill    = "get_waybill"    // → "waybill" (WaybillResult)
	KindCheckBilling  = "check_billing"  // → "billing" (Check)
	KindCheckDelivery = "check_delivery" // → "delivery" (Check)
	KindGetRoute      = "get_route"      // waybill → "route" (RouteResult)
	KindGetSortPlan   = "get_sort_plan"  // → "plan" (PlanResult)
	KindCheckCOD      = "check_cod"      // waybill → "cod" (Check)
	KindDecideChute   = "decide_chute"   // station, waybill, billing, delivery, route, plan → "decision" (Decision)
	KindPersist       = "persist"        // decision → "sorted" (ops.SortResult)
	KindPushTracking  = "push_tracking"  // sorted → "tracked" (bool)
)

// Check is what a check step concluded about a parcel. A check that
// refuses carries its refusal to decide_chute, which answers the first
// refusal in the order the sequential flow checks in, so a parcel that
// fails several checks at once gets the same answer from every flow. A
// configured default (any JSON object, e.g. {"note": "not checked in this
// market"}) stands for a check that did not run: it passes.
type Check struct {
	// Note says why a check passed without running (from the config).
	Note    string `json:"note,omitempty"`
	refusal *hub.Refusal
}

// WaybillResult is the waybill as the order centre knows it, or why it
// could not be used.
type WaybillResult struct {
	Waybill hub.Waybill `json:"waybill"`
	refusal *hub.Refusal
}

// RouteResult is the waybill's route through the network, or why the scan
// is refused (wrong_station).
type RouteResult struct {
	Stations []string `json:"stations"`
	refusal  *hub.Refusal
}

// PlanResult is the station's current sort plan, or why it is missing.
type PlanResult struct {
	Plan    hub.SortPlan `json:"plan"`
	refusal *hub.Refusal
}

// Decision is where the parcel goes, with the waybill the decision used
// (persist writes its destination, type and service).
type Decision struct {
	Result  ops.SortResult `json:"result"`
	Waybill hub.Waybill    `json:"waybill"`
}

// refused is what explain asks of a node's value: the refusal it carries.
type refused interface{ refused() *hub.Refusal }

func (c Check) refused() *hub.Refusal         { return c.refusal }
func (w WaybillResult) refused() *hub.Refusal { return w.refusal }
func (r RouteResult) refused() *hub.Refusal   { return r.refusal }
func (p PlanResult) refused() *hub.Refusal    { return p.refusal }

// input is what every run of a sort flow starts with.
type input struct {
	scan ops.Scan
	// codLimit is the market's cash-on-delivery limit; hasCOD false: none.
	codLimit int64
	hasCOD   bool
	// decideOnly: persist and push_tracking write and wake nothing (the
	// sorter's lookup, which only asks where a parcel would go).
	decideOnly bool
}

// noRule is decide_chute's failure when no rule takes the parcel: the
// no_rule refusal, with the result naming the exception chute.
type noRule struct {
	res ops.SortResult
	ref *hub.Refusal
}

func (e *noRule) Error() string { return e.ref.Error() }
func (e *noRule) Unwrap() error { return e.ref }

// persistFailed marks persist's errors: a refusal inside the transaction
// is recorded by persist itself, so the runner must not record it again.
type persistFailed struct{ err error }

func (e *persistFailed) Error() string { return e.err.Error() }
func (e *persistFailed) Unwrap() error { return e.err }

// outcome splits a downstream call's error: a refusal about the parcel
// (unknown_waybill, …) becomes a value for decide_chute to weigh, while
// downstream trouble (timeout, unavailable) and anything unexpected stay
// errors, so the node's policy applies — a required node fails the run at
// once, an optional one yields its default.
func outcome(err error) (*hub.Refusal, error) {
	if r, ok := hub.AsRefusal(err); ok && !hub.Transient(r.Code) {
		return r, nil
	}
	return nil, err
}

// asRefusal is the refusal a judgement returned (nil when it passed).
func asRefusal(err error) *hub.Refusal {
	r, _ := hub.AsRefusal(err)
	return r
}

func inputOf(in dag.Inputs) (*input, error) { return dag.Input[*input](in) }

// catalog is the step kinds of the hub's sort flows, bound to r.
func (r *Runner) catalog() (*dag.Catalog, error) {
	cat := dag.NewCatalog()
	err := errors.Join(
		cat.Add(KindCheckStation, dag.KindOf(nil, "station", r.checkStation)),
		cat.Add(KindGetWaybill, dag.KindOf(nil, "waybill", r.getWaybill)),
		cat.Add(KindCheckBilling, dag.KindOf(nil, "billing", r.checkBilling)),
		cat.Add(KindCheckDelivery, dag.KindOf(nil, "delivery", r.checkDelivery)),
		cat.Add(KindGetRoute, dag.KindOf([]string{"waybill"}, "route", r.getRoute)),
		cat.Add(KindGetSortPlan, dag.KindOf(nil, "plan", r.getSortPlan)),
		cat.Add(KindCheckCOD, dag.KindOf([]string{"waybill"}, "cod", checkCOD)),
		cat.Add(KindDecideChute, dag.KindOf([]string{"station", "waybill", "billing", "delivery", "route", "plan"},
			"decision", decideChute)),
		cat.Add(KindPersist, dag.KindOf([]string{"decision"}, "sorted", r.persist)),
		cat.Add(KindPushTracking, dag.KindOf([]string{"sorted"}, "tracked", r.pushTracking)),
	)
	return cat, err
}

func (r *Runner) checkStation(ctx context.Context, in dag.Inputs) (Check, error) {
	x, err := inputOf(in)
	if err != nil {
		return Check{}, err
	}
	st, err := r.ds.Station(ctx, x.scan.Station)
	if err != nil {
		ref, err := outcome(err)
		return Check{refusal: ref}, err
	}
	return Check{refusal: asRefusal(ops.CheckStation(st))}, nil
}

func (r *Runner) getWaybill(ctx context.Context, in dag.Inputs) (WaybillResult, error) {
	x, err := inputOf(in)
	if err != nil {
		return WaybillResult{}, err
	}
	wb, err := r.ds.Waybill(ctx, x.scan.Waybill)
	if err != nil {
		ref, err := outcome(err)
		return WaybillResult{refusal: ref}, err
	}
	return WaybillResult{Waybill: wb}, nil
}

func (r *Runner) checkBilling(ctx context.Context, in dag.Inputs) (Check, error) {
	x, err := inputOf(in)
	if err != nil {
		return Check{}, err
	}
	v, err := r.ds.CheckBilling(ctx, x.scan.Waybill, x.scan.Station, hub.OpSort)
	if err != nil {
		ref, err := outcome(err)
		return Check{refusal: ref}, err
	}
	return Check{refusal: asRefusal(ops.CheckBilling(v, x.scan.Waybill))}, nil
}

func (r *Runner) checkDelivery(ctx context.Context, in dag.Inputs) (Check, error) {
	x, err := inputOf(in)
	if err != nil {
		return Check{}, err
	}
	ds, err := r.ds.DeliveryStatus(ctx, x.scan.Waybill)
	if err != nil {
		ref, err := outcome(err)
		return Check{refusal: ref}, err
	}
	return Check{refusal: asRefusal(ops.CheckDelivery(ds, x.scan.Waybill))}, nil
}

// getRoute asks for the waybill's route, unless the waybill is refused
// already (then there is nothing to route and decide_chute answers the
// waybill's refusal).
func (r *Runner) getRoute(ctx context.Context, in dag.Inputs) (RouteResult, error) {
	x, err := inputOf(in)
	if err != nil {
		return RouteResult{}, err
	}
	wb, err := dag.Get[WaybillResult](in, "waybill")
	if err != nil || wb.refusal != nil {
		return RouteResult{}, err
	}
	route, err := r.ds.Route(ctx, wb.Waybill.Origin, wb.Waybill.Destination)
	if err != nil {
		ref, err := outcome(err)
		return RouteResult{refusal: ref}, err
	}
	return RouteResult{Stations: route, refusal: asRefusal(ops.CheckRoute(route, x.scan.Station, x.scan.Waybill))}, nil
}

func (r *Runner) getSortPlan(ctx context.Context, in dag.Inputs) (PlanResult, error) {
	x, err := inputOf(in)
	if err != nil {
		return PlanResult{}, err
	}
	plan, err := r.ds.SortPlan(ctx, x.scan.Station)
	if err != nil {
		ref, err := outcome(err)
		return PlanResult{refusal: ref}, err
	}
	return PlanResult{Plan: plan}, nil
}

// checkCOD refuses a parcel whose cash on delivery is above its market's
// limit. It is a check a market adds, not one of the sequential flow's, so
// it refuses at once instead of waiting for decide_chute.
func checkCOD(_ context.Context, in dag.Inputs) (Check, error) {
	x, err := inputOf(in)
	if err != nil {
		return Check{}, err
	}
	wb, err := dag.Get[WaybillResult](in, "waybill")
	if err != nil || wb.refusal != nil || !x.hasCOD {
		return Check{}, err
	}
	if wb.Waybill.CODAmount > x.codLimit {
		return Check{}, hub.Refuse(hub.CodeCODOverLimit, "%s carries cash on delivery of %d %s, over the limit of %d in %s",
			x.scan.Waybill, wb.Waybill.CODAmount, wb.Waybill.Currency, x.codLimit, wb.Waybill.Market)
	}
	return Check{}, nil
}

// decideChute weighs the checks in the sequential flow's order — station,
// waybill, billing, delivery status, route, sort plan — and answers the
// first refusal; with none, it applies the sort plan.
func decideChute(_ context.Context, in dag.Inputs) (Decision, error) {
	x, err := inputOf(in)
	if err != nil {
		return Decision{}, err
	}
	var first *hub.Refusal
	for _, key := range []string{"station", "waybill", "billing", "delivery", "route", "plan"} {
		v, _ := in.Lookup(key)
		if rv, ok := v.(refused); ok && first == nil {
			first = rv.refused()
		}
	}
	if first != nil {
		return Decision{}, first
	}
	wb, err1 := dag.Get[WaybillResult](in, "waybill")
	plan, err2 := dag.Get[PlanResult](in, "plan")
	if err := errors.Join(err1, err2); err != nil {
		return Decision{}, err
	}
	res, err := ops.DecideChute(x.scan, wb.Waybill, plan.Plan)
	if err != nil {
		if ref, ok := hub.AsRefusal(err); ok && ref.Code == hub.CodeNoRule {
			return Decision{}, &noRule{res: res, ref: ref}
		}
		return Decision{}, err
	}
	return Decision{Result: res, Waybill: wb.Waybill}, nil
}

// persist records the sort: work order, parcel and tracking event in one
// transaction (ops.CommitSort). A decide-only run writes nothing.
func (r *Runner) persist(ctx context.Context, in dag.Inputs) (ops.SortResult, error) {
	x, err := inputOf(in)
	if err != nil {
		return ops.SortResult{}, err
	}
	d, err := dag.Get[Decision](in, "decision")
	if err != nil || x.decideOnly {
		return d.Result, err
	}
	out, err := r.svc.CommitSort(ctx, x.scan, d.Result, d.Waybill)
	if err != nil {
		return out, &persistFailed{err: err}
	}
	return out, nil
}

// pushTracking wakes the outbox relay so the sort's tracking event is
// published now rather than at the relay's next poll. It reports whether
// it woke one.
func (r *Runner) pushTracking(_ context.Context, in dag.Inputs) (bool, error) {
	x, err := inputOf(in)
	if err != nil || x.decideOnly || r.cfg.Tracking == nil {
		return false, err
	}
	r.cfg.Tracking.Notify()
	return true, nil
}

// describe names a run's failure for logs.
func describe(err error) string {
	var ne *dag.NodeError
	if errors.As(err, &ne) {
		return fmt.Sprintf("node %s %s", ne.Node, ne.Status)
	}
	return "run"
}
