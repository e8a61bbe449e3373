package dag

import (
	"errors"
	"fmt"
	"strings"
)

// Validation sentinels: a graph or a flow config that breaks a rule is refused
// with a *ValidationError wrapping one of these.
var (
	// ErrInvalid is a malformed definition: empty or bad names, an empty flow,
	// a node without a step, unknown config fields, YAML/JSON syntax.
	ErrInvalid = errors.New("invalid definition")
	// ErrUnknownStep is a config node naming a step kind the Catalog lacks.
	ErrUnknownStep = errors.New("unknown step kind")
	// ErrUnknownCondition is a config node naming a skip condition the Catalog lacks.
	ErrUnknownCondition = errors.New("unknown skip condition")
	// ErrUnknownDependency is a need (or before) naming no node of the graph.
	ErrUnknownDependency = errors.New("unknown dependency")
	// ErrUnknownNode is a market override naming a node the base flow lacks.
	ErrUnknownNode = errors.New("unknown node")
	// ErrCycle is a dependency cycle; the message names its nodes in order.
	ErrCycle = errors.New("dependency cycle")
	// ErrMissingProducer is a consumed key that no node produces.
	ErrMissingProducer = errors.New("missing producer")
	// ErrDuplicateProducer is a key produced by two nodes.
	ErrDuplicateProducer = errors.New("duplicate producer")
	// ErrNoDefault is a consumer of a skippable or optional node that declares
	// no default, so the consumer could find no value.
	ErrNoDefault = errors.New("consumed output has no default")
	// ErrDuplicateNode is two nodes of one graph with the same name.
	ErrDuplicateNode = errors.New("duplicate node")
	// ErrBadTimeout is a timeout that is negative, zero where one is required,
	// or not a Go duration ("80ms").
	ErrBadTimeout = errors.New("bad timeout")
	// ErrBadPolicy is a policy other than required or optional.
	ErrBadPolicy = errors.New("bad policy")
	// ErrBadDefault is a configured default that does not decode into the
	// step's output type.
	ErrBadDefault = errors.New("bad default")
)

// Run-time sentinels.
var (
	// ErrTimeout marks a node that ran past its own timeout.
	ErrTimeout = errors.New("node timeout")
	// ErrPanic marks a step or skip condition that panicked; the error is a *PanicError.
	ErrPanic = errors.New("step panicked")
	// ErrGoexit marks a step that called runtime.Goexit (as t.FailNow does).
	ErrGoexit = errors.New("step called runtime.Goexit")
	// ErrNoValue is a key a step did not consume, or a result does not hold.
	ErrNoValue = errors.New("no value for key")
	// ErrWrongType is a value of another type than the one asked for.
	ErrWrongType = errors.New("value of another type")
	// ErrNoConfig is a Registry lookup before any config was loaded.
	ErrNoConfig = errors.New("no flow config loaded")
	// ErrUnknownFlow is a Registry lookup of an operation the config lacks.
	ErrUnknownFlow = errors.New("unknown flow")
	// ErrStaleVersion is a Registry Load of a version not newer than the current one.
	ErrStaleVersion = errors.New("stale flow config version")
)

// ValidationError says where a definition breaks a rule: the flow (the graph's
// name), the market override (empty for the base flow) and the node, when
// those apply. Err wraps one of the validation sentinels.
type ValidationError struct {
	Flow   string
	Market string
	Node   string
	Err    error
}

// Error names the place, then the rule broken.
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("dag: ")
	sep := ""
	for _, p := range [...]struct{ k, v string }{{"flow", e.Flow}, {"market", e.Market}, {"node", e.Node}} {
		if p.v != "" {
			b.WriteString(sep + p.k + " " + p.v)
			sep = ", "
		}
	}
	if sep != "" {
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the rule broken.
func (e *ValidationError) Unwrap() error { return e.Err }

// NodeError is a run that failed because of one node: a required node that
// failed, timed out or panicked. Err is what the step returned (so errors.Is
// and errors.As see the step's own errors), or ErrTimeout / a *PanicError.
type NodeError struct {
	Graph  string
	Node   string
	Status Status
	Err    error
}

// Error names the graph, the node and its status, then the cause.
func (e *NodeError) Error() string {
	return fmt.Sprintf("dag: %s: node %s %s: %v", e.Graph, e.Node, e.Status, e.Err)
}

// Unwrap returns the node's own error.
func (e *NodeError) Unwrap() error { return e.Err }

// PanicError is a step (or skip condition) that panicked, recovered. Stack is
// the goroutine's stack at the panic.
type PanicError struct {
	Node  string
	Value any
	Stack []byte
}

// Error names the node and the panic value; the stack is in Stack and in the log.
func (e *PanicError) Error() string { return fmt.Sprintf("node %s panicked: %v", e.Node, e.Value) }

// Is makes errors.Is(err, ErrPanic) true.
func (e *PanicError) Is(target error) bool { return target == ErrPanic }

// verr builds a *ValidationError wrapping sentinel with detail.
func verr(flow, market, node string, sentinel error, format string, args ...any) error {
	err := sentinel
	if format != "" {
		err = fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
	}
	return &ValidationError{Flow: flow, Market: market, Node: node, Err: err}
}
