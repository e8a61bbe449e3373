package dag_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/waypost/waypost/dag"
)

// The hub's sort flow, reduced: the application registers its step kinds
// once, loads the flow config (base flow plus market overrides) into a
// Registry, and runs the flow of the scan's market per request.
func Example() {
	type scan struct{ Station, Waybill string }
	type waybill struct {
		Destination string
		COD         int
	}
	type verdict struct {
		OK     bool   `json:"ok"`
		Reason string `json:"reason"`
	}
	errRefused := errors.New("refused")

	cat := dag.NewCatalog()
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	must(cat.Add("get_waybill", dag.KindOf(nil, "waybill", func(ctx context.Context, in dag.Inputs) (waybill, error) {
		s, err := dag.Input[scan](in)
		if err != nil {
			return waybill{}, err
		}
		return waybill{Destination: "KUL", COD: len(s.Waybill) * 100}, nil
	})))
	must(cat.Add("check_billing", dag.KindOf(nil, "billing", func(ctx context.Context, in dag.Inputs) (verdict, error) {
		return verdict{OK: true, Reason: "paid"}, nil
	})))
	must(cat.Add("check_cod", dag.KindOf([]string{"waybill"}, "cod", func(ctx context.Context, in dag.Inputs) (bool, error) {
		wb, err := dag.Get[waybill](in, "waybill")
		if err == nil && wb.COD > 1000 {
			return false, fmt.Errorf("COD %d over the station's limit: %w", wb.COD, errRefused)
		}
		return true, err
	})))
	must(cat.Add("decide_chute", dag.KindOf([]string{"waybill", "billing"}, "chute",
		func(ctx context.Context, in dag.Inputs) (string, error) {
			wb, err := dag.Get[waybill](in, "waybill")
			if err != nil {
				return "", err
			}
			v, err := dag.Get[verdict](in, "billing")
			if err != nil || !v.OK {
				return "", errors.Join(err, errRefused)
			}
			return "CH-" + wb.Destination + "-" + v.Reason, nil
		})))
	must(cat.Add("persist", dag.KindOf([]string{"chute"}, "", func(ctx context.Context, in dag.Inputs) (string, error) {
		return "WO-1", nil
	})))

	config := `
flows:
  sort:
    timeout: 80ms                # every node's timeout unless it sets one
    nodes:
      - {name: waybill, step: get_waybill}
      - name: billing
        step: check_billing
        policy: optional         # a billing outage must not stop sorting
        default: {ok: true, reason: unbilled}
      - {name: decide, step: decide_chute}
      - {name: persist, step: persist}
    markets:
      MY:
        skip: [billing]          # no billing check in MY: the default applies
      PH:
        add:
          - {name: cod, step: check_cod, before: [persist]}
`
	reg := dag.NewRegistry(cat, dag.Options{})
	version, err := reg.Swap([]byte(config))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("version", version)

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	for _, run := range []struct {
		market string
		scan   scan
	}{{"SG", scan{"S1", "W1"}}, {"MY", scan{"S1", "W2"}}, {"PH", scan{"S1", "W3"}}, {"PH", scan{"S1", "W0000000004"}}} {
		flow, err := reg.Lookup("sort", run.market)
		if err != nil {
			fmt.Println(err)
			return
		}
		res, err := flow.Run(ctx, run.scan)
		var statuses []string
		for _, n := range res.Nodes() {
			statuses = append(statuses, n.Name+"="+n.Status.String())
		}
		if ne := (*dag.NodeError)(nil); errors.As(err, &ne) {
			// The step's own error stays in the chain for the caller.
			fmt.Printf("%s: node %s %s, refused=%t\n", flow.Name, ne.Node, ne.Status, errors.Is(err, errRefused))
			continue
		} else if err != nil {
			fmt.Println(err)
			continue
		}
		chute, _ := dag.Output[string](res, "chute")
		fmt.Printf("%s: %s (%s)\n", flow.Name, chute, strings.Join(statuses, " "))
	}
	// Output:
	// version 1
	// sort: CH-KUL-paid (waybill=ok billing=ok decide=ok persist=ok)
	// sort/MY: CH-KUL-unbilled (waybill=ok billing=skipped decide=ok persist=ok)
	// sort/PH: CH-KUL-paid (waybill=ok billing=ok decide=ok persist=ok cod=ok)
	// sort/PH: node cod error, refused=true
}

// Graphs can also be built in Go, without a config.
func ExampleNew() {
	g, err := dag.New("greet", []dag.Node{
		{Name: "name", Step: func(ctx context.Context, in dag.Inputs) (any, error) { return in.Input(), nil }},
		{Name: "greeting", Consumes: []string{"name"}, Timeout: 50 * time.Millisecond,
			Step: func(ctx context.Context, in dag.Inputs) (any, error) {
				name, err := dag.Get[string](in, "name")
				return "hello " + name, err
			}},
	}, dag.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := g.Run(context.Background(), "hub")
	if err != nil {
		fmt.Println(err)
		return
	}
	out, _ := dag.Output[string](res, "greeting")
	fmt.Println(out, res.CriticalPath())
	// Output: hello hub [name greeting]
}
