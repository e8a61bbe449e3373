package dag

import (
	"fmt"
	"math"
	"time"
)

// Status is how a node ended.
type Status uint8

const (
	// StatusCancelled (the zero value): the run stopped before the node
	// finished — a required node failed, or the run's ctx was cancelled. A
	// node that never started has Started false.
	StatusCancelled Status = iota
	// StatusOK: the step returned a value.
	StatusOK
	// StatusSkipped: the skip condition held or a market disabled the node;
	// it yields its Default.
	StatusSkipped
	// StatusTimeout: the node ran past its own timeout, or was running when
	// the run's deadline passed.
	StatusTimeout
	// StatusError: the step returned an error or panicked.
	StatusError
)

var statusNames = [...]string{"cancelled", "ok", "skipped", "timeout", "error"}

// String returns ok, skipped, timeout, error or cancelled.
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// MarshalText writes the status as its name, so JSON shows "ok".
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a status name written by MarshalText, so a client
// can decode an explain answer into Explain.
func (s *Status) UnmarshalText(b []byte) error {
	for i, n := range statusNames {
		if n == string(b) {
			*s = Status(i)
			return nil
		}
	}
	return fmt.Errorf("dag: unknown status %q", b)
}

// NodeResult is what one node did in one run.
type NodeResult struct {
	Name   string
	Status Status
	// Started is false for a node the run never got to.
	Started bool
	// Start is the node's start as an offset from the run's start;
	// Duration how long it took (until it was given up on, for a step that
	// ignored its ctx).
	Start    time.Duration
	Duration time.Duration
	// Err is the step's error, ErrTimeout, a *PanicError, or the run's
	// cancellation cause; nil for ok and skipped.
	Err error
	// Value is the node's value: the step's, or its Default when skipped or
	// when optional and failed.
	Value any
}

// Result is one run of a graph. It is complete when Run returns, also when
// Run returns an error, and is not changed afterwards.
type Result struct {
	graph *Graph
	total time.Duration
	nodes []nodeRun
}

// Graph names the graph that ran.
func (r *Result) Graph() string { return r.graph.name }

// Total is the run's duration, from Run's start to its decision.
func (r *Result) Total() time.Duration { return r.total }

// Nodes lists every node's result in declaration order.
func (r *Result) Nodes() []NodeResult {
	out := make([]NodeResult, len(r.nodes))
	for i := range r.nodes {
		out[i] = r.node(i)
	}
	return out
}

// Node returns the result of the node called name.
func (r *Result) Node(name string) (NodeResult, bool) {
	i, ok := r.graph.byName[name]
	if !ok {
		return NodeResult{}, false
	}
	return r.node(int(i)), true
}

func (r *Result) node(i int) NodeResult {
	n := &r.nodes[i]
	return NodeResult{Name: r.graph.nodes[i].Name, Status: n.status, Started: n.started, Start: n.start,
		Duration: n.dur, Err: n.err, Value: n.value}
}

// Value returns the value produced under key; false when no node produces
// key or its node did not finish (the run stopped first).
func (r *Result) Value(key string) (any, bool) {
	i, ok := r.graph.keys[key]
	if !ok || r.nodes[i].status == StatusCancelled {
		return nil, false
	}
	return r.nodes[i].value, true
}

// Output returns the value produced under key as a T.
func Output[T any](r *Result, key string) (T, error) {
	v, ok := r.Value(key)
	return as[T](v, ok, r.graph.name, key)
}

func as[T any](v any, ok bool, where, key string) (T, error) {
	var zero T
	if !ok {
		return zero, fmt.Errorf("%s: %w %q", where, ErrNoValue, key)
	}
	t, ok := v.(T)
	if !ok {
		return zero, fmt.Errorf("%s: %w: %q holds %T, not %T", where, ErrWrongType, key, v, zero)
	}
	return t, nil
}

// CriticalPath is the chain of nodes that set the run's latency, first to
// last: start from the node that finished last, then repeatedly step back to
// its dependency that finished last (all of them finished before it
// started). Ties go to the node declared first. Nodes that never started are
// not on it.
func (r *Result) CriticalPath() []string {
	last := int32(-1)
	for i := range r.nodes {
		if r.nodes[i].started && (last < 0 || r.end(int32(i)) > r.end(last)) {
			last = int32(i)
		}
	}
	var rev []string
	for last >= 0 {
		rev = append(rev, r.graph.nodes[last].Name)
		next := int32(-1)
		for _, p := range r.graph.nodes[last].preds {
			if r.nodes[p].started && (next < 0 || r.end(p) > r.end(next) || (r.end(p) == r.end(next) && p < next)) {
				next = p
			}
		}
		last = next
	}
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	return rev
}

func (r *Result) end(i int32) time.Duration { return r.nodes[i].start + r.nodes[i].dur }

// Explain is a run in the shape the hub's explain answers use: the flow's
// name, version and market (filled by Flow.Explain), then times in
// milliseconds.
type Explain struct {
	Flow         string        `json:"flow"`
	Version      int64         `json:"version"`
	Market       string        `json:"market"`
	TotalMs      float64       `json:"totalMs"`
	Nodes        []ExplainNode `json:"nodes"`
	CriticalPath []string      `json:"criticalPath"`
}

// ExplainNode is one node of an Explain.
type ExplainNode struct {
	Name       string  `json:"name"`
	Status     Status  `json:"status"`
	StartMs    float64 `json:"startMs"`
	DurationMs float64 `json:"durationMs"`
	Error      string  `json:"error,omitempty"`
}

// Explain summarises the run; Flow is the graph's name, Version and Market
// are left empty (see Flow.Explain).
func (r *Result) Explain() Explain {
	e := Explain{Flow: r.graph.name, TotalMs: ms(r.total), Nodes: make([]ExplainNode, len(r.nodes)),
		CriticalPath: r.CriticalPath()}
	for i := range r.nodes {
		n := r.node(i)
		e.Nodes[i] = ExplainNode{Name: n.Name, Status: n.Status, StartMs: ms(n.Start), DurationMs: ms(n.Duration)}
		if n.Err != nil {
			e.Nodes[i].Error = n.Err.Error()
		}
	}
	return e
}

// ms is d in milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// Inputs is what a step (or a skip condition) may read: the run's input and
// the values of the keys its node consumes. Valid only during the call.
type Inputs struct {
	r *run
	i int32
}

// Input is the value the run was started with.
func (in Inputs) Input() any { return in.r.input }

// Node is the name of the node being run.
func (in Inputs) Node() string { return in.r.g.nodes[in.i].Name }

// Lookup returns the value of a consumed key; false when the node does not
// consume key.
func (in Inputs) Lookup(key string) (any, bool) {
	n := &in.r.g.nodes[in.i]
	for k, c := range n.Consumes {
		if c == key {
			return in.r.nodes[n.consumeIdx[k]].value, true
		}
	}
	return nil, false
}

// Get returns the value of a consumed key as a T.
func Get[T any](in Inputs, key string) (T, error) {
	v, ok := in.Lookup(key)
	return as[T](v, ok, in.Node(), key)
}

// Input returns the run's input as a T.
func Input[T any](in Inputs) (T, error) {
	return as[T](in.r.input, true, in.Node(), "input")
}
