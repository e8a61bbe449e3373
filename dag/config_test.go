package dag_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/dag"
)

type testWaybill struct {
	ID  string
	COD int
}

type testVerdict struct {
	OK     bool   `json:"ok"`
	Reason string `json:"reasonCode"`
}

// testCatalog is a small sort flow's kinds; calls counts step calls by kind.
func testCatalog(t testing.TB, calls map[string]*atomic.Int32) *dag.Catalog {
	t.Helper()
	count := func(kind string) {
		if c := calls[kind]; c != nil {
			c.Add(1)
		}
	}
	cat := dag.NewCatalog()
	add := func(name string, k dag.Kind) { require.NoError(t, cat.Add(name, k)) }
	add("get_waybill", dag.KindOf(nil, "waybill", func(_ context.Context, in dag.Inputs) (testWaybill, error) {
		count("get_waybill")
		id, err := dag.Input[string](in)
		cod := 0
		if strings.HasPrefix(id, "COD") {
			cod = 500
		}
		return testWaybill{ID: id, COD: cod}, err
	}))
	add("check_billing", dag.KindOf(nil, "billing", func(context.Context, dag.Inputs) (testVerdict, error) {
		count("check_billing")
		return testVerdict{OK: true, Reason: "billed"}, nil
	}))
	add("decide_chute", dag.KindOf([]string{"waybill", "billing"}, "chute", func(_ context.Context, in dag.Inputs) (string, error) {
		count("decide_chute")
		wb, err := dag.Get[testWaybill](in, "waybill")
		if err != nil {
			return "", err
		}
		v, err := dag.Get[testVerdict](in, "billing")
		return fmt.Sprintf("C-%s-%s", wb.ID, v.Reason), err
	}))
	add("check_cod", dag.KindOf([]string{"waybill"}, "cod", func(context.Context, dag.Inputs) (bool, error) {
		count("check_cod")
		return true, nil
	}))
	add("persist", dag.KindOf([]string{"chute"}, "", func(_ context.Context, in dag.Inputs) (string, error) {
		count("persist")
		return dag.Get[string](in, "chute")
	}))
	add("use_cod", dag.KindOf([]string{"cod"}, "", func(_ context.Context, in dag.Inputs) (bool, error) {
		return dag.Get[bool](in, "cod")
	}))
	add("value", dag.KindOf(nil, "", func(context.Context, dag.Inputs) (int, error) { return 1, nil }))
	require.NoError(t, cat.AddCondition("no_cod", dag.Condition{Consumes: []string{"waybill"}, Skip: func(in dag.Inputs) bool {
		wb, err := dag.Get[testWaybill](in, "waybill")
		return err == nil && wb.COD == 0
	}}))
	return cat
}

const sortConfig = `
flows:
  sort:
    timeout: 100ms
    nodes:
      - {name: waybill, step: get_waybill}
      - name: billing
        step: check_billing
        policy: optional
        timeout: 50ms
        default: {ok: true, reasonCode: assumed}
      - {name: decide, step: decide_chute}
      - {name: persist, step: persist}
    markets:
      A:
        skip: [billing]
      B:
        add:
          - {name: cod, step: check_cod, skip: no_cod, default: false, before: [persist]}
        change:
          billing: {policy: required, timeout: 120ms}
      C: {}
`

// sortConfigJSON is sortConfig's base flow as JSON, indented with tabs.
const sortConfigJSON = "{\n\t\"flows\": {\n\t\t\"sort\": {\n\t\t\t\"nodes\": [\n" +
	"\t\t\t\t{\"name\": \"waybill\", \"step\": \"get_waybill\"},\n" +
	"\t\t\t\t{\"name\": \"billing\", \"step\": \"check_billing\", \"policy\": \"optional\", \"default\": {\"ok\": true, \"reasonCode\": \"assumed\"}},\n" +
	"\t\t\t\t{\"name\": \"decide\", \"step\": \"decide_chute\"},\n" +
	"\t\t\t\t{\"name\": \"persist\", \"step\": \"persist\"}\n" +
	"\t\t\t],\n\t\t\t\"markets\": {\"A\": {\"skip\": [\"billing\"]}}\n\t\t}\n\t}\n}\n"

func TestConfigMarkets(t *testing.T) {
	calls := map[string]*atomic.Int32{"check_billing": {}, "check_cod": {}}
	for _, cfg := range []struct{ name, text string }{{"yaml", sortConfig}, {"json", sortConfigJSON}} {
		t.Run(cfg.name, func(t *testing.T) {
			reg := dag.NewRegistry(testCatalog(t, calls), dag.Options{})
			v, err := reg.Swap([]byte(cfg.text))
			require.NoError(t, err)
			require.Equal(t, int64(1), v)

			cases := []struct {
				market, waybill, flow, chute string
				billingCalls                 int32
				billing                      dag.Status
			}{
				{"", "W1", "sort", "C-W1-billed", 1, dag.StatusOK},
				{"A", "W1", "sort/A", "C-W1-assumed", 0, dag.StatusSkipped},
				{"ZZ", "W1", "sort", "C-W1-billed", 1, dag.StatusOK},
			}
			for _, tc := range cases {
				calls["check_billing"].Store(0)
				f, err := reg.Lookup("sort", tc.market)
				require.NoError(t, err)
				require.Equal(t, tc.flow, f.Name)
				require.Equal(t, tc.market, f.Market)
				require.Equal(t, int64(1), f.Version)
				res, err := f.Run(t.Context(), tc.waybill)
				require.NoError(t, err)
				chute, err := dag.Output[string](res, "persist")
				require.NoError(t, err)
				require.Equal(t, tc.chute, chute, "market %q", tc.market)
				require.Equal(t, tc.billingCalls, calls["check_billing"].Load(), "market %q", tc.market)
				require.Equal(t, tc.billing, node(t, res, "billing").Status)
			}
		})
	}
}

func TestConfigMarketAddsNodeAndChangesPolicy(t *testing.T) {
	calls := map[string]*atomic.Int32{"check_cod": {}}
	reg := dag.NewRegistry(testCatalog(t, calls), dag.Options{})
	_, err := reg.Swap([]byte(sortConfig))
	require.NoError(t, err)
	f, err := reg.Lookup("sort", "B")
	require.NoError(t, err)
	require.Equal(t, "sort/B", f.Name)
	require.Equal(t, []string{"waybill", "billing", "decide", "persist", "cod"}, f.Graph.NodeNames())
	snap := reg.Snapshot()
	require.Equal(t, []string{"A", "B"}, snap.Markets("sort"), "C is empty: it runs the base flow")
	require.Equal(t, []string{"sort"}, snap.Operations())

	res, err := f.Run(t.Context(), "COD-1")
	require.NoError(t, err)
	cod, persist := node(t, res, "cod"), node(t, res, "persist")
	require.Equal(t, dag.StatusOK, cod.Status)
	require.GreaterOrEqual(t, persist.Start, cod.Start+cod.Duration, "before: [persist] orders cod first")
	require.Equal(t, int32(1), calls["check_cod"].Load())

	res, err = f.Run(t.Context(), "W2")
	require.NoError(t, err)
	require.Equal(t, dag.StatusSkipped, node(t, res, "cod").Status, "no_cod skips a waybill without COD")
	v, err := dag.Output[bool](res, "cod")
	require.NoError(t, err)
	require.False(t, v, "the configured default")
	require.Equal(t, int32(1), calls["check_cod"].Load())
}

func TestConfigValidation(t *testing.T) {
	flow := func(nodes string, markets ...string) string {
		s := "flows:\n  sort:\n    nodes:\n" + nodes
		if len(markets) > 0 {
			s += "    markets:\n" + strings.Join(markets, "")
		}
		return s
	}
	const base = "      - {name: waybill, step: get_waybill}\n" +
		"      - {name: billing, step: check_billing, policy: optional, default: {ok: true}}\n" +
		"      - {name: decide, step: decide_chute}\n"
	cases := []struct {
		name     string
		config   string
		sentinel error
		market   string
		node     string
		msg      string
	}{
		{"empty", "", dag.ErrInvalid, "", "", "empty config"},
		{"no flows", "flows: {}\n", dag.ErrInvalid, "", "", "no flows"},
		{"syntax", "flows: [\n", dag.ErrInvalid, "", "", "yaml"},
		{"unknown field", flow("      - {name: a, step: value, timout: 5ms}\n"), dag.ErrInvalid, "", "", "field timout not found"},
		{"flow without nodes", "flows:\n  sort: {nodes: []}\n", dag.ErrInvalid, "", "", "dag: flow sort: invalid definition: flow without nodes"},
		{"unknown step kind", flow("      - {name: a, step: get_waybil}\n"), dag.ErrUnknownStep, "", "a",
			`dag: flow sort, node a: unknown step kind: "get_waybil"`},
		{"no step kind", flow("      - {name: a}\n"), dag.ErrInvalid, "", "a", "no step kind"},
		{"unknown step kind in market", flow(base, "      B:\n        add: [{name: cod, step: check_codd}]\n"),
			dag.ErrUnknownStep, "B", "cod", `dag: flow sort, market B, node cod: unknown step kind: "check_codd"`},
		{"unknown dependency", flow("      - {name: a, step: value, needs: [ghost]}\n"), dag.ErrUnknownDependency, "", "a",
			`unknown dependency: "ghost"`},
		{"unknown before", flow("      - {name: a, step: value, before: [ghost]}\n"), dag.ErrUnknownDependency, "", "a",
			`unknown dependency: before "ghost"`},
		{"cycle", flow(base + "      - {name: x, step: value, needs: [y]}\n      - {name: y, step: value, needs: [x]}\n"),
			dag.ErrCycle, "", "x", "dependency cycle: x → y → x"},
		{"missing producer", flow("      - {name: decide, step: decide_chute}\n      - {name: billing, step: check_billing}\n"),
			dag.ErrMissingProducer, "", "decide", `no node produces "waybill"`},
		{"optional without default", flow("      - {name: waybill, step: get_waybill}\n" +
			"      - {name: billing, step: check_billing, policy: optional}\n      - {name: decide, step: decide_chute}\n"),
			dag.ErrNoDefault, "", "decide", `consumes "billing" of optional node billing, which declares no default`},
		{"market skips a node without default", flow("      - {name: waybill, step: get_waybill}\n"+
			"      - {name: billing, step: check_billing}\n      - {name: decide, step: decide_chute}\n",
			"      A: {skip: [billing]}\n"),
			dag.ErrNoDefault, "A", "decide", "dag: flow sort, market A, node decide: consumed output has no default"},
		{"skip condition without default", flow(base + "      - {name: cod, step: check_cod, skip: no_cod}\n" +
			"      - {name: use, step: use_cod}\n"),
			dag.ErrNoDefault, "", "use", `consumes "cod" of skippable node cod, which declares no default`},
		{"duplicate node", flow(base + "      - {name: decide, step: value}\n"), dag.ErrDuplicateNode, "", "decide",
			"dag: flow sort, node decide: duplicate node"},
		{"duplicate node added by market", flow(base, "      B: {add: [{name: billing, step: value}]}\n"),
			dag.ErrDuplicateNode, "B", "billing", "market B, node billing: duplicate node"},
		{"bad timeout", flow("      - {name: a, step: value, timeout: fast}\n"), dag.ErrBadTimeout, "", "a",
			`bad timeout: "fast": want a positive duration`},
		{"negative timeout", flow("      - {name: a, step: value, timeout: -5ms}\n"), dag.ErrBadTimeout, "", "a", `"-5ms"`},
		{"zero timeout", flow("      - {name: a, step: value, timeout: 0s}\n"), dag.ErrBadTimeout, "", "a", `"0s"`},
		{"bad flow timeout", "flows:\n  sort:\n    timeout: soon\n    nodes: [{name: a, step: value}]\n",
			dag.ErrBadTimeout, "", "", "dag: flow sort: bad timeout: flow timeout"},
		{"bad policy", flow("      - {name: a, step: value, policy: sometimes}\n"), dag.ErrBadPolicy, "", "a",
			`bad policy: "sometimes"`},
		{"bad policy in market change", flow(base, "      B: {change: {billing: {policy: maybe}}}\n"),
			dag.ErrBadPolicy, "B", "billing", `market B, node billing: bad policy: "maybe"`},
		{"market skips unknown node", flow(base, "      A: {skip: [biling]}\n"), dag.ErrUnknownNode, "A", "biling",
			"skip names a node the base flow lacks"},
		{"market changes unknown node", flow(base, "      A: {change: {ghost: {timeout: 5ms}}}\n"), dag.ErrUnknownNode,
			"A", "ghost", "change names a node the base flow lacks"},
		{"unknown condition", flow("      - {name: a, step: value, skip: never}\n"), dag.ErrUnknownCondition, "", "a",
			`unknown skip condition: "never"`},
		{"bad default", flow("      - {name: waybill, step: get_waybill}\n      - {name: cod, step: check_cod, default: maybe}\n"),
			dag.ErrBadDefault, "", "cod", "bad default: json: cannot unmarshal string"},
	}
	reg := dag.NewRegistry(testCatalog(t, nil), dag.Options{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := reg.Validate([]byte(tc.config))
			require.ErrorIs(t, err, tc.sentinel)
			require.ErrorContains(t, err, tc.msg)
			var ve *dag.ValidationError
			require.ErrorAs(t, err, &ve)
			require.ErrorIs(t, ve, tc.sentinel, "the first error is the expected one")
			if tc.node != "" || tc.market != "" {
				require.Equal(t, "sort", ve.Flow)
			}
			require.Equal(t, tc.market, ve.Market)
			require.Equal(t, tc.node, ve.Node)
			_, swapErr := reg.Swap([]byte(tc.config))
			require.Error(t, swapErr)
		})
	}
}

func TestConfigReturnsAllErrors(t *testing.T) {
	reg := dag.NewRegistry(testCatalog(t, nil), dag.Options{})
	err := reg.Validate([]byte(`
flows:
  sort:
    nodes:
      - {name: a, step: nope}
      - {name: b, step: value, policy: whenever, timeout: soon}
    markets:
      X: {skip: [ghost], add: [{name: c, step: nada}]}
  inbound:
    nodes:
      - {name: a, step: value, needs: [z]}
`))
	var joined interface{ Unwrap() []error }
	require.ErrorAs(t, err, &joined)
	require.Len(t, joined.Unwrap(), 6, "%v", err)
	for _, s := range []error{dag.ErrUnknownStep, dag.ErrBadPolicy, dag.ErrBadTimeout, dag.ErrUnknownNode,
		dag.ErrUnknownDependency} {
		require.ErrorIs(t, err, s)
	}
	require.ErrorContains(t, err, "flow inbound, node a")
	require.ErrorContains(t, err, "flow sort, market X, node c")
}

func TestCatalogRefusesDuplicates(t *testing.T) {
	cat := testCatalog(t, nil)
	require.ErrorIs(t, cat.Add("value", dag.Kind{Run: val(1)}), dag.ErrInvalid)
	require.ErrorIs(t, cat.Add("nil", dag.Kind{}), dag.ErrInvalid)
	require.ErrorIs(t, cat.AddCondition("no_cod", dag.Condition{Skip: func(dag.Inputs) bool { return false }}), dag.ErrInvalid)
	require.Contains(t, cat.Kinds(), "check_cod")
	require.Equal(t, []string{"no_cod"}, cat.Conditions())
}

func TestConfigReportsEveryMarket(t *testing.T) {
	reg := dag.NewRegistry(testCatalog(t, nil), dag.Options{})
	err := reg.Validate([]byte(`
flows:
  sort:
    nodes:
      - {name: waybill, step: get_waybill}
      - {name: billing, step: check_billing}
      - {name: decide, step: decide_chute}
    markets:
      A: {add: [{name: x, step: nope}]}
      B: {skip: [billing]}
`))
	require.ErrorIs(t, err, dag.ErrUnknownStep)
	require.ErrorContains(t, err, "market A, node x")
	require.ErrorIs(t, err, dag.ErrNoDefault, "market B is compiled although market A is broken")
	require.ErrorContains(t, err, "market B, node decide")
}
