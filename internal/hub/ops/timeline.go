package ops

import "time"

// Names of the steps of the sequential sort, as a Timeline records them;
// the DAG flows use the same names for the same steps.
const (
	StepStation  = "station"
	StepWaybill  = "waybill"
	StepBilling  = "billing"
	StepDelivery = "delivery"
	StepRoute    = "route"
	StepPlan     = "plan"
	StepDecide   = "decide"
	StepPersist  = "persist"
)

// Timeline records the steps of one sequential sort as they run, for
// explain answers. A nil *Timeline records nothing, so sorts that are not
// explained pay nothing for it.
type Timeline struct {
	start time.Time
	steps []TimedStep
}

// TimedStep is one step of a Timeline: its start as an offset from the
// timeline's start, how long it took and its error, if any.
type TimedStep struct {
	Name     string
	Start    time.Duration
	Duration time.Duration
	Err      error
}

// NewTimeline starts a timeline now.
func NewTimeline() *Timeline { return &Timeline{start: time.Now(), steps: make([]TimedStep, 0, 8)} }

// Steps are the steps recorded, in the order they ran.
func (t *Timeline) Steps() []TimedStep { return t.steps }

// Elapsed is the time since the timeline started.
func (t *Timeline) Elapsed() time.Duration { return time.Since(t.start) }

// begin returns a step's start; the zero time on a nil timeline.
func (t *Timeline) begin() time.Time {
	if t == nil {
		return time.Time{}
	}
	return time.Now()
}

// done records the step name that began at t0 and returns its err, so a
// call site reads `if tl.done(name, t0, err) != nil { return … }`.
func (t *Timeline) done(name string, t0 time.Time, err error) error {
	if t != nil {
		t.steps = append(t.steps, TimedStep{Name: name, Start: t0.Sub(t.start), Duration: time.Since(t0), Err: err})
	}
	return err
}
