package dag

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"gopkg.in/yaml.v3"
)

// fileConfig is a flow config document (YAML, or JSON, which YAML reads).
type fileConfig struct {
	Flows map[string]*flowConfig `yaml:"flows"`
}

// flowConfig is one operation's flow: the base nodes and per-market overrides.
type flowConfig struct {
	// Timeout is the default node timeout ("" or absent: none).
	Timeout string                   `yaml:"timeout"`
	Nodes   []nodeConfig             `yaml:"nodes"`
	Markets map[string]*marketConfig `yaml:"markets"`
}

// nodeConfig is one node: a step kind from the Catalog and its policy.
type nodeConfig struct {
	Name    string    `yaml:"name"`
	Step    string    `yaml:"step"`
	Needs   []string  `yaml:"needs"`
	Before  []string  `yaml:"before"`
	Policy  string    `yaml:"policy"`
	Timeout string    `yaml:"timeout"`
	Default yaml.Node `yaml:"default"`
	Skip    string    `yaml:"skip"`
}

// marketConfig changes a flow for one market.
type marketConfig struct {
	Timeout *string                `yaml:"timeout"`
	Skip    []string               `yaml:"skip"`
	Change  map[string]*nodeChange `yaml:"change"`
	Add     []nodeConfig           `yaml:"add"`
}

// nodeChange replaces the fields it sets; Before adds to what the node had.
type nodeChange struct {
	Needs   *[]string `yaml:"needs"`
	Before  []string  `yaml:"before"`
	Policy  *string   `yaml:"policy"`
	Timeout *string   `yaml:"timeout"`
	Default yaml.Node `yaml:"default"`
	Skip    *string   `yaml:"skip"`
}

// changes reports whether the market changes the base node called name.
func (m *marketConfig) changes(name string) (*nodeChange, bool) {
	if m == nil {
		return nil, false
	}
	ch, ok := m.Change[name]
	return ch, ok
}

func (m *marketConfig) empty() bool {
	return m == nil || (m.Timeout == nil && len(m.Skip) == 0 && len(m.Change) == 0 && len(m.Add) == 0)
}

// compiledFlow is one operation: its base graph and a graph per market
// that overrides it.
type compiledFlow struct {
	base    *Graph
	markets map[string]*Graph
}

// compileConfig parses and validates a whole config and compiles every
// graph. It returns all problems found at once.
func compileConfig(cat *Catalog, config []byte, opts Options) (map[string]*compiledFlow, error) {
	var fc fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(config))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, verr("", "", "", ErrInvalid, "empty config")
		}
		return nil, verr("", "", "", ErrInvalid, "%v", err)
	}
	if len(fc.Flows) == 0 {
		return nil, verr("", "", "", ErrInvalid, "no flows")
	}
	var errs []error
	out := make(map[string]*compiledFlow, len(fc.Flows))
	for _, op := range slices.Sorted(maps.Keys(fc.Flows)) {
		f, ferrs := compileFlow(cat, op, fc.Flows[op], opts)
		errs = append(errs, ferrs...)
		out[op] = f
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func compileFlow(cat *Catalog, op string, fc *flowConfig, opts Options) (*compiledFlow, []error) {
	if op == "" || fc == nil || len(fc.Nodes) == 0 {
		return nil, []error{verr(op, "", "", ErrInvalid, "flow without nodes")}
	}
	var errs []error
	def, err := parseTimeout(fc.Timeout)
	if err != nil {
		errs = append(errs, verr(op, "", "", ErrBadTimeout, "flow timeout: %v", err))
	}
	b := builder{cat: cat, flow: op}
	base, berrs := b.build(fc.Nodes, def, nil)
	errs = append(errs, berrs...)
	f := &compiledFlow{markets: map[string]*Graph{}}
	if len(errs) == 0 {
		f.base, err = newFromConfig(op, op, "", base, opts)
		if err != nil {
			errs = append(errs, err)
		}
	}
	baseOK := len(errs) == 0
	for _, m := range slices.Sorted(maps.Keys(fc.Markets)) {
		mc := fc.Markets[m]
		if mc.empty() {
			continue
		}
		b.market = m
		mdef := def
		var merrs []error
		if mc.Timeout != nil {
			if mdef, err = parseTimeout(*mc.Timeout); err != nil {
				merrs = append(merrs, verr(op, m, "", ErrBadTimeout, "flow timeout: %v", err))
			}
		}
		nodes, nerrs := b.build(overlay(fc.Nodes, mc), mdef, mc)
		merrs = append(merrs, nerrs...)
		errs = append(errs, merrs...)
		if !baseOK || len(merrs) > 0 {
			// With the base broken, a compile here would mostly repeat its
			// errors; with the override's own nodes broken, too.
			continue
		}
		g, err := newFromConfig(op+"/"+m, op, m, nodes, opts)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		f.markets[m] = g
	}
	return f, errs
}

// overlay applies a market's changes and additions to copies of the base
// nodes; its skips are applied by build.
func overlay(base []nodeConfig, mc *marketConfig) []nodeConfig {
	nodes := make([]nodeConfig, 0, len(base)+len(mc.Add))
	for _, n := range base {
		n.Needs = slices.Clone(n.Needs)
		n.Before = slices.Clone(n.Before)
		if ch, ok := mc.changes(n.Name); ok && ch != nil {
			if ch.Needs != nil {
				n.Needs = slices.Clone(*ch.Needs)
			}
			n.Before = append(n.Before, ch.Before...)
			if ch.Policy != nil {
				n.Policy = *ch.Policy
			}
			if ch.Timeout != nil {
				n.Timeout = *ch.Timeout
			}
			if ch.Default.Kind != 0 {
				n.Default = ch.Default
			}
			if ch.Skip != nil {
				n.Skip = *ch.Skip
			}
		}
		nodes = append(nodes, n)
	}
	return append(nodes, mc.Add...)
}

// builder resolves config nodes against the catalog.
type builder struct {
	cat    *Catalog
	flow   string
	market string
}

func (b *builder) bad(node string, sentinel error, format string, args ...any) error {
	return verr(b.flow, b.market, node, sentinel, format, args...)
}

// build turns config nodes into Nodes; mc, when set, is the market whose
// skips and change targets are checked against the nodes.
func (b *builder) build(cfg []nodeConfig, defTimeout time.Duration, mc *marketConfig) ([]Node, []error) {
	var errs []error
	nodes := make([]Node, len(cfg))
	index := make(map[string]int, len(cfg))
	inherited := 0
	if mc != nil {
		inherited = len(cfg) - len(mc.Add)
	}
	for i := range cfg {
		n, nerrs := b.node(&cfg[i], defTimeout)
		if _, changed := mc.changes(cfg[i].Name); i >= inherited || changed {
			// A base node the market leaves alone had its errors reported
			// with the base flow.
			errs = append(errs, nerrs...)
		}
		nodes[i] = n
		if _, dup := index[n.Name]; !dup {
			index[n.Name] = i
		}
	}
	if mc != nil {
		for _, name := range mc.Skip {
			if i, ok := index[name]; ok && i < inherited {
				nodes[i].Disabled = true
			} else {
				errs = append(errs, b.bad(name, ErrUnknownNode, "skip names a node the base flow lacks"))
			}
		}
		for _, name := range slices.Sorted(maps.Keys(mc.Change)) {
			if i, ok := index[name]; !ok || i >= inherited {
				errs = append(errs, b.bad(name, ErrUnknownNode, "change names a node the base flow lacks"))
			}
		}
	}
	for i := range cfg {
		for _, t := range cfg[i].Before {
			j, ok := index[t]
			if !ok {
				errs = append(errs, b.bad(cfg[i].Name, ErrUnknownDependency, "before %q", t))
				continue
			}
			nodes[j].Needs = append(nodes[j].Needs, cfg[i].Name)
		}
	}
	return nodes, errs
}

// node resolves one config node.
func (b *builder) node(c *nodeConfig, defTimeout time.Duration) (Node, []error) {
	var errs []error
	n := Node{Name: c.Name, Needs: slices.Clone(c.Needs), Timeout: defTimeout}
	var err error
	if n.Policy, err = ParsePolicy(c.Policy); err != nil {
		errs = append(errs, b.bad(c.Name, ErrBadPolicy, "%q (want required or optional)", c.Policy))
	}
	if c.Timeout != "" {
		t, err := parseTimeout(c.Timeout)
		if err != nil || t == 0 {
			errs = append(errs, b.bad(c.Name, ErrBadTimeout, "%q: want a positive duration such as 80ms", c.Timeout))
		}
		n.Timeout = t
	}
	kind, ok := b.cat.kinds[c.Step]
	switch {
	case c.Step == "":
		errs = append(errs, b.bad(c.Name, ErrInvalid, "no step kind"))
	case !ok:
		errs = append(errs, b.bad(c.Name, ErrUnknownStep, "%q", c.Step))
	default:
		n.Step, n.Produces, n.Default = kind.Run, kind.Produces, kind.Default
		n.Consumes = slices.Clone(kind.Consumes)
	}
	if c.Skip != "" {
		cond, ok := b.cat.conds[c.Skip]
		if !ok {
			errs = append(errs, b.bad(c.Name, ErrUnknownCondition, "%q", c.Skip))
		} else {
			n.Skip = cond.Skip
			for _, k := range cond.Consumes {
				if !slices.Contains(n.Consumes, k) {
					n.Consumes = append(n.Consumes, k)
				}
			}
		}
	}
	if c.Default.Kind != 0 && ok {
		v, err := decodeDefault(&c.Default, kind)
		if err != nil {
			errs = append(errs, b.bad(c.Name, ErrBadDefault, "%v", err))
		}
		n.Default = v
	}
	return n, errs
}

// decodeDefault reads a configured default through JSON, so the output
// type's json tags apply whether the config was YAML or JSON.
func decodeDefault(y *yaml.Node, k Kind) (any, error) {
	var generic any
	if err := y.Decode(&generic); err != nil {
		return nil, err
	}
	if k.DecodeDefault == nil {
		return generic, nil
	}
	raw, err := json.Marshal(generic)
	if err != nil {
		return nil, err
	}
	return k.DecodeDefault(raw)
}

// parseTimeout reads a Go duration; "" is 0 (none), a negative one is refused.
func parseTimeout(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d < 0 {
		return 0, fmt.Errorf("%s is negative", s)
	}
	return d, nil
}

// newFromConfig compiles the graph name of flow (and market, for an override).
func newFromConfig(name, flow, market string, nodes []Node, opts Options) (*Graph, error) {
	g, errs := compile(name, flow, market, nodes)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	g.setOptions(opts)
	return g, nil
}
