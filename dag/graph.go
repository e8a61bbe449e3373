package dag

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Step is one atomic unit of work. It reads the run's input and the values of
// the keys its node consumes from in, and returns the value its node produces.
// A step should honour ctx: it is cancelled when the node's timeout passes or
// the run ends early.
type Step func(ctx context.Context, in Inputs) (any, error)

// Policy says what a node's failure does to the run.
type Policy uint8

const (
	// Required (the default): the node's error, panic or timeout fails the
	// run and cancels every other node.
	Required Policy = iota
	// Optional: the node's error, panic or timeout yields its Default and the
	// run goes on.
	Optional
)

// String returns "required" or "optional".
func (p Policy) String() string {
	switch p {
	case Required:
		return "required"
	case Optional:
		return "optional"
	}
	return fmt.Sprintf("policy(%d)", uint8(p))
}

// ParsePolicy reads "required" (or "") and "optional".
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "", "required":
		return Required, nil
	case "optional":
		return Optional, nil
	}
	return 0, fmt.Errorf("%w %q (want required or optional)", ErrBadPolicy, s)
}

// Node declares one node of a graph.
type Node struct {
	// Name is unique in the graph; it names the node in results, spans and errors.
	Name string
	// Step does the work. It may be nil only when Disabled.
	Step Step
	// Needs are nodes that must finish first although their values are not read.
	Needs []string
	// Consumes are the keys the step (and Skip) read; each key's producer
	// becomes a dependency.
	Consumes []string
	// Produces is the key of the step's value; empty means the node's name.
	Produces string
	// Policy says whether the node's failure fails the run.
	Policy Policy
	// Timeout bounds the step, counted from its start and capped by the
	// run's deadline; 0 leaves only the run's deadline.
	Timeout time.Duration
	// Default is the node's value when it is skipped, or when it is Optional
	// and fails. nil means no default: a node that consumes the output of a
	// skippable or optional node without a default is refused. A typed nil
	// (say (*T)(nil)) is a default.
	Default any
	// Skip, when set, is asked once the node's dependencies are done; true
	// skips the node, which then yields Default. It may read the input and
	// the consumed keys.
	Skip func(in Inputs) bool
	// Disabled skips the node always (a market override), yielding Default.
	Disabled bool
}

// Options are the collaborators of a graph; the zero value is valid.
type Options struct {
	// TracerProvider, when set, gives every node run a span, a child of the
	// span in the Run ctx. nil: no spans, at no cost.
	TracerProvider trace.TracerProvider
	// Logger receives panics (with their stack) and steps that returned after
	// their node was given up on. nil: discarded.
	Logger *slog.Logger
}

// tracerName is the instrumentation scope of the spans.
const tracerName = "github.com/waypost/waypost/dag"

// node is the compiled form of Node: names resolved to indexes.
type node struct {
	Node
	key        string  // produced key
	preds      []int32 // distinct dependencies (needs and producers of consumes)
	succs      []int32 // distinct dependents
	consumeIdx []int32 // producer of Consumes[k]
	spanName   string  // graph/node, built once
	skippable  bool    // Skip set or Disabled
	mayDefault bool    // skippable or Optional: consumers may get Default
	timeoutErr error   // the node's error when it runs past Timeout
}

// Graph is a compiled, immutable graph: validated once, run any number of
// times, concurrently.
type Graph struct {
	name  string
	nodes []node
	roots []int32
	// maxIdle is how many idle workers a run keeps waiting for work: a
	// node finishing readies at most its fanout (see fanout), one of which
	// its own worker takes, so more would only be woken to exit.
	maxIdle int
	// timeouts is whether any node has a timeout of its own.
	timeouts bool
	keys     map[string]int32 // produced key → node
	byName   map[string]int32
	tracer   trace.Tracer // nil: no spans
	log      *slog.Logger
}

// New validates nodes and compiles them into a Graph named name. It returns
// every problem found at once (errors.Join of *ValidationError).
func New(name string, nodes []Node, opts Options) (*Graph, error) {
	g, errs := compile(name, name, "", nodes)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	g.setOptions(opts)
	return g, nil
}

func (g *Graph) setOptions(opts Options) {
	if opts.TracerProvider != nil {
		g.tracer = opts.TracerProvider.Tracer(tracerName)
	}
	g.log = opts.Logger
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
}

// Name is the graph's name (a flow's name, with "/market" for an override).
func (g *Graph) Name() string { return g.name }

// Len is the number of nodes.
func (g *Graph) Len() int { return len(g.nodes) }

// NodeNames lists the nodes in declaration order.
func (g *Graph) NodeNames() []string {
	out := make([]string, len(g.nodes))
	for i := range g.nodes {
		out[i] = g.nodes[i].Name
	}
	return out
}

// compile checks nodes and builds the graph called name; flow and market
// label its errors.
func compile(name, flow, market string, nodes []Node) (*Graph, []error) {
	var errs []error
	bad := func(node string, sentinel error, format string, args ...any) {
		errs = append(errs, verr(flow, market, node, sentinel, format, args...))
	}
	if name == "" {
		bad("", ErrInvalid, "graph without a name")
	}
	if len(nodes) == 0 {
		bad("", ErrInvalid, "no nodes")
		return nil, errs
	}
	g := &Graph{name: name, nodes: make([]node, 0, len(nodes)), keys: map[string]int32{},
		byName: make(map[string]int32, len(nodes))}
	for _, n := range nodes {
		switch {
		case n.Name == "" || strings.ContainsAny(n.Name, " \t\n/"):
			bad(n.Name, ErrInvalid, "node name %q must be non-empty, without spaces or '/'", n.Name)
			continue
		case g.has(n.Name):
			bad(n.Name, ErrDuplicateNode, "")
			continue
		}
		if n.Step == nil && !n.Disabled {
			bad(n.Name, ErrInvalid, "no step")
		}
		if n.Timeout < 0 {
			bad(n.Name, ErrBadTimeout, "%s is negative", n.Timeout)
		}
		if n.Policy != Required && n.Policy != Optional {
			bad(n.Name, ErrBadPolicy, "%s", n.Policy)
		}
		// The graph must not change when the caller reuses its slices.
		n.Needs, n.Consumes = slices.Clone(n.Needs), slices.Clone(n.Consumes)
		cn := node{Node: n, key: n.Produces, spanName: name + "/" + n.Name,
			timeoutErr: fmt.Errorf("%w after %s: %w", ErrTimeout, n.Timeout, context.DeadlineExceeded)}
		if cn.key == "" {
			cn.key = n.Name
		}
		cn.skippable = n.Skip != nil || n.Disabled
		cn.mayDefault = cn.skippable || n.Policy == Optional
		i := int32(len(g.nodes))
		if prev, ok := g.keys[cn.key]; ok {
			bad(n.Name, ErrDuplicateProducer, "key %q is also produced by %s", cn.key, g.nodes[prev].Name)
		} else {
			g.keys[cn.key] = i
		}
		g.byName[n.Name] = i
		g.nodes = append(g.nodes, cn)
	}
	for i := range g.nodes {
		n := &g.nodes[i]
		for _, need := range n.Needs {
			j, ok := g.byName[need]
			if !ok {
				bad(n.Name, ErrUnknownDependency, "%q", need)
				continue
			}
			n.preds = appendUnique(n.preds, j)
		}
		n.consumeIdx = make([]int32, len(n.Consumes))
		for k, key := range n.Consumes {
			j, ok := g.keys[key]
			if !ok {
				bad(n.Name, ErrMissingProducer, "no node produces %q", key)
				n.consumeIdx[k] = -1
				continue
			}
			n.consumeIdx[k] = j
			p := &g.nodes[j]
			if p.mayDefault && p.Default == nil {
				bad(n.Name, ErrNoDefault, "consumes %q of %s %s, which declares no default", key, skipOrOptional(p), p.Name)
			}
			n.preds = appendUnique(n.preds, j)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	for i := range g.nodes {
		for _, p := range g.nodes[i].preds {
			g.nodes[p].succs = append(g.nodes[p].succs, int32(i))
		}
		if len(g.nodes[i].preds) == 0 {
			g.roots = append(g.roots, int32(i))
		}
	}
	g.maxIdle = max(0, g.fanout()-1)
	for i := range g.nodes {
		g.timeouts = g.timeouts || g.nodes[i].Timeout > 0
	}
	if cyc := g.findCycle(); cyc != nil {
		names := make([]string, len(cyc))
		for k, j := range cyc {
			names[k] = g.nodes[j].Name
		}
		return nil, []error{verr(flow, market, names[0], ErrCycle, "%s", strings.Join(names, " → "))}
	}
	return g, nil
}

func (g *Graph) has(name string) bool {
	_, ok := g.byName[name]
	return ok
}

func skipOrOptional(n *node) string {
	if n.skippable {
		return "skippable node"
	}
	return "optional node"
}

func appendUnique(s []int32, v int32) []int32 {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

// maxExactFanout bounds the graphs whose fanout is computed exactly (it
// takes a bit set of descendants per node).
const maxExactFanout = 4096

// fanout is the most nodes that one node finishing can ready at once: its
// dependents, less those that also depend on another of its descendants
// (they must wait for that one too). The graph is acyclic.
func (g *Graph) fanout() int {
	n := len(g.nodes)
	most := 0
	if n > maxExactFanout {
		for i := range g.nodes {
			most = max(most, len(g.nodes[i].succs))
		}
		return most
	}
	words := (n + 63) / 64
	desc := make([]uint64, n*words) // desc[i*words:] holds i's descendants
	done := make([]bool, n)
	var fill func(i int32)
	fill = func(i int32) {
		if done[i] {
			return
		}
		done[i] = true
		d := desc[int(i)*words : int(i+1)*words]
		for _, s := range g.nodes[i].succs {
			fill(s)
			d[s/64] |= 1 << (s % 64)
			for w, v := range desc[int(s)*words : int(s+1)*words] {
				d[w] |= v
			}
		}
	}
	for i := range g.nodes {
		fill(int32(i))
		d := desc[i*words : (i+1)*words]
		count := 0
		for _, s := range g.nodes[i].succs {
			alone := true
			for _, p := range g.nodes[s].preds {
				if d[p/64]&(1<<(p%64)) != 0 {
					alone = false
					break
				}
			}
			if alone {
				count++
			}
		}
		most = max(most, count)
	}
	return most
}

// findCycle returns one dependency cycle as a closed walk (first == last) in
// the order the dependencies run, or nil when the graph is acyclic.
func (g *Graph) findCycle() []int32 {
	const (
		white = iota
		grey
		black
	)
	color := make([]uint8, len(g.nodes))
	var stack []int32
	var found []int32
	var visit func(i int32) bool
	visit = func(i int32) bool {
		color[i] = grey
		stack = append(stack, i)
		for _, s := range g.nodes[i].succs {
			switch color[s] {
			case grey:
				at := slices.Index(stack, s)
				found = append(slices.Clone(stack[at:]), s)
				return true
			case white:
				if visit(s) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[i] = black
		return false
	}
	for i := range g.nodes {
		if color[i] == white && visit(int32(i)) {
			return found
		}
	}
	return nil
}
