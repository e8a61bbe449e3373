package flow

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/waypost/waypost/internal/platform/dynconf"
)

// SettingName is the live setting that holds the sort flows.
const SettingName = "hub.flows"

// The flows a market's sorts can run (Settings.Use).
const (
	// FlowDAG runs the market's flow of Settings.Flows on the dag engine.
	FlowDAG = "dag"
	// FlowSequential runs the baseline: one step after the other (ops.Sort).
	FlowSequential = "sequential"
)

// Operation is the flows config's operation for sorting.
const Operation = "sort"

// ErrInvalidSettings is wrapped by every validation error of Settings.
var ErrInvalidSettings = errors.New("invalid hub flows")

// Settings is the value of the live setting hub.flows.
type Settings struct {
	// Use maps a market to the flow its sorts run: FlowDAG or
	// FlowSequential. "*" applies to every market not listed; without it,
	// FlowDAG.
	Use map[string]string `json:"use"`
	// CODLimits is, per market, the largest cash-on-delivery amount (in
	// the waybill's minor units) the check_cod step lets through. A market
	// without a limit is not limited.
	CODLimits map[string]int64 `json:"codLimits"`
	// Flows is the dag flows config as JSON: {"sort": {"nodes": […],
	// "markets": {…}}}, the "flows" of docs/dag.md.
	Flows json.RawMessage `json:"flows"`
}

//go:embed default.yaml
var defaultYAML []byte

// DefaultSettings is the embedded default of hub.flows (default.yaml).
func DefaultSettings() Settings {
	s, err := parseYAML(defaultYAML)
	if err != nil {
		// default.yaml is compiled in and tested; a broken one is a build mistake.
		panic(fmt.Sprintf("flow: embedded default.yaml: %v", err))
	}
	return s
}

// parseYAML reads settings written as YAML, through JSON so that the json
// tags and the Flows raw JSON apply.
func parseYAML(doc []byte) (Settings, error) {
	var generic any
	if err := yaml.Unmarshal(doc, &generic); err != nil {
		return Settings{}, err
	}
	raw, err := json.Marshal(generic)
	if err != nil {
		return Settings{}, err
	}
	var s Settings
	if err := dynconf.DecodeStrict(raw, &s); err != nil {
		return Settings{}, err
	}
	return s, nil
}

// flowFor is the flow market uses.
func (s Settings) flowFor(market string) string {
	if f, ok := s.Use[market]; ok {
		return f
	}
	if f, ok := s.Use["*"]; ok {
		return f
	}
	return FlowDAG
}

// document is Flows as a whole dag config document.
func (s Settings) document() []byte {
	doc := make([]byte, 0, len(s.Flows)+16)
	doc = append(doc, `{"flows":`...)
	doc = append(doc, s.Flows...)
	return append(doc, '}')
}

// check validates what Settings adds to the dag config: use, codLimits,
// and a sort flow whose markets all decide and persist.
func (s Settings) check() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrInvalidSettings))
	}
	for _, m := range slices.Sorted(maps.Keys(s.Use)) {
		if m == "" {
			bad("use: empty market name")
		}
		if f := s.Use[m]; f != FlowDAG && f != FlowSequential {
			bad("use.%s: %q is not a flow (want %q or %q)", m, f, FlowDAG, FlowSequential)
		}
	}
	for _, m := range slices.Sorted(maps.Keys(s.CODLimits)) {
		if s.CODLimits[m] < 0 {
			bad("codLimits.%s: %d is negative", m, s.CODLimits[m])
		}
	}
	if len(bytes.TrimSpace(s.Flows)) == 0 || string(bytes.TrimSpace(s.Flows)) == "null" {
		bad("flows: missing")
		return errors.Join(errs...)
	}
	var shape map[string]*struct {
		Nodes []struct {
			Name string `json:"name"`
			Step string `json:"step"`
		} `json:"nodes"`
		Markets map[string]*struct {
			Skip []string `json:"skip"`
		} `json:"markets"`
	}
	if err := json.Unmarshal(s.Flows, &shape); err != nil {
		bad("flows: %v", err)
		return errors.Join(errs...)
	}
	sort := shape[Operation]
	if sort == nil {
		bad("flows: no %q flow", Operation)
		return errors.Join(errs...)
	}
	// The runner reads decide_chute's decision (sorter lookups) and
	// persist's answer: every market's flow must have both.
	for _, kind := range []string{KindDecideChute, KindPersist} {
		var names []string
		for _, n := range sort.Nodes {
			if n.Step == kind {
				names = append(names, n.Name)
			}
		}
		if len(names) == 0 {
			bad("flows.sort: no node with step %s", kind)
			continue
		}
		for _, m := range slices.Sorted(maps.Keys(sort.Markets)) {
			if mc := sort.Markets[m]; mc != nil {
				for _, skipped := range mc.Skip {
					if slices.Contains(names, skipped) {
						bad("flows.sort.markets.%s: skips %s, but every flow must run its %s step", m, skipped, kind)
					}
				}
			}
		}
	}
	return errors.Join(errs...)
}

// Register adds the live setting hub.flows to reg, validated by r, and
// binds r to it: r runs the stored flows from the next sort on. It panics
// when the name is taken (dynconf.Register), a wiring mistake.
func Register(reg *dynconf.Registry, r *Runner) *dynconf.Setting[Settings] {
	s := dynconf.Register(reg, SettingName, DefaultSettings(), r.Validate)
	r.Bind(s)
	return s
}
