package dag

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// Kind is a step kind an application offers to flow configs: the step and
// the keys it reads and writes. A config node names its kind; the node then
// consumes Consumes and produces Produces (its own name when empty).
type Kind struct {
	Run      Step
	Consumes []string
	Produces string
	// Default is the node's default when its config declares none; nil: none.
	Default any
	// DecodeDefault turns a configured default, as JSON, into the value the
	// consumers expect. nil keeps the JSON's generic form (map[string]any, …).
	DecodeDefault func(raw []byte) (any, error)
}

// KindOf builds a Kind from a typed step, so that a configured default is
// decoded (as JSON, so json tags apply) into an Out, the type its consumers
// read with Get.
func KindOf[Out any](consumes []string, produces string, step func(ctx context.Context, in Inputs) (Out, error)) Kind {
	return Kind{
		Run: func(ctx context.Context, in Inputs) (any, error) {
			v, err := step(ctx, in)
			if err != nil {
				return nil, err
			}
			return v, nil
		},
		Consumes: consumes,
		Produces: produces,
		DecodeDefault: func(raw []byte) (any, error) {
			var v Out
			if err := json.Unmarshal(raw, &v); err != nil {
				return nil, err
			}
			return v, nil
		},
	}
}

// Condition is a named skip condition a config node may use: Skip reports
// whether to skip, reading the run's input and the keys in Consumes (which
// the node then also consumes).
type Condition struct {
	Consumes []string
	Skip     func(in Inputs) bool
}

// Catalog is the set of step kinds and skip conditions that flow configs may
// name. Fill it at start, then hand it to a Registry; it must not change
// afterwards.
type Catalog struct {
	kinds map[string]Kind
	conds map[string]Condition
}

// NewCatalog returns an empty catalog.
func NewCatalog() *Catalog {
	return &Catalog{kinds: map[string]Kind{}, conds: map[string]Condition{}}
}

// Add registers a step kind under name; a name already taken, or a kind
// without a step, is refused.
func (c *Catalog) Add(name string, k Kind) error {
	switch {
	case name == "":
		return fmt.Errorf("dag: catalog: %w: step kind without a name", ErrInvalid)
	case k.Run == nil:
		return fmt.Errorf("dag: catalog: %w: step kind %q has no step", ErrInvalid, name)
	}
	if _, dup := c.kinds[name]; dup {
		return fmt.Errorf("dag: catalog: %w: step kind %q registered twice", ErrInvalid, name)
	}
	c.kinds[name] = k
	return nil
}

// AddCondition registers a skip condition under name; a name already taken,
// or a condition without a function, is refused.
func (c *Catalog) AddCondition(name string, cond Condition) error {
	switch {
	case name == "":
		return fmt.Errorf("dag: catalog: %w: condition without a name", ErrInvalid)
	case cond.Skip == nil:
		return fmt.Errorf("dag: catalog: %w: condition %q has no function", ErrInvalid, name)
	}
	if _, dup := c.conds[name]; dup {
		return fmt.Errorf("dag: catalog: %w: condition %q registered twice", ErrInvalid, name)
	}
	c.conds[name] = cond
	return nil
}

// Kinds lists the registered step kinds, sorted.
func (c *Catalog) Kinds() []string { return slices.Sorted(maps.Keys(c.kinds)) }

// Conditions lists the registered skip conditions, sorted.
func (c *Catalog) Conditions() []string { return slices.Sorted(maps.Keys(c.conds)) }
