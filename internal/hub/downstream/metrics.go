package downstream

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/waypost/waypost/internal/platform/metrics"
)

// Lookup kinds, the kind label of the lookup metrics.
const (
	kindStation  = "station"
	kindRoute    = "route"
	kindSortPlan = "sort_plan"
	kindWaybill  = "waybill"
	kindBilling  = "billing"
	kindDelivery = "delivery"
)

// clientMetrics counts what the basic data lookups and the change stream do.
type clientMetrics struct {
	hits, executed, shared, abandoned *prometheus.CounterVec
	changes                           *prometheus.CounterVec
	batchCalls, batchKeys             *prometheus.CounterVec
	resubscribes                      prometheus.Counter
}

// lookupMetrics are one kind's children of the lookup counters, resolved
// once so a cache hit costs one atomic add.
type lookupMetrics struct {
	hits, executed, shared, abandoned prometheus.Counter
}

func (m *clientMetrics) kind(kind string) lookupMetrics {
	return lookupMetrics{
		hits:      m.hits.WithLabelValues(kind),
		executed:  m.executed.WithLabelValues(kind),
		shared:    m.shared.WithLabelValues(kind),
		abandoned: m.abandoned.WithLabelValues(kind),
	}
}

func (m *clientMetrics) batch(kind string) batchMetrics {
	return batchMetrics{calls: m.batchCalls.WithLabelValues(kind), keys: m.batchKeys.WithLabelValues(kind)}
}

// newClientMetrics registers the counters on reg; nil keeps them in a
// throwaway registry. A second client on the same registerer shares the
// first one's counters.
func newClientMetrics(reg prometheus.Registerer) (*clientMetrics, error) {
	reg = metrics.OrNop(reg)
	m := &clientMetrics{}
	for _, c := range []struct {
		dst        **prometheus.CounterVec
		name, help string
	}{
		{&m.hits, "waypost_hub_downstream_cache_hits_total", "Basic data lookups answered from the cache, by kind (station, route, sort_plan)."},
		{&m.executed, "waypost_hub_downstream_calls_executed_total", "Basic data lookups that called basic data, by kind."},
		{&m.shared, "waypost_hub_downstream_calls_shared_total", "Basic data lookups answered by a call another lookup started, by kind."},
		{&m.abandoned, "waypost_hub_downstream_lookups_abandoned_total", "Basic data lookups whose caller's context ended before the (shared) call answered, by kind."},
		{&m.batchCalls, "waypost_hub_downstream_batch_calls_total", "Calls made for lookups that may share a call (waybill, billing, delivery), by kind; lookups_total / calls_total is the mean batch."},
		{&m.batchKeys, "waypost_hub_downstream_batch_lookups_total", "Lookups answered by those calls, by kind."},
		{&m.changes, "waypost_hub_downstream_changes_total", "Basic data changes received on the change stream, by kind (station_updated, sort_plan_published, other)."},
	} {
		vec, err := metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: c.name, Help: c.help}, []string{"kind"}))
		if err != nil {
			return nil, fmt.Errorf("downstream: register metrics: %w", err)
		}
		*c.dst = vec
	}
	resub, err := metrics.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "waypost_hub_downstream_watch_resubscribes_total",
		Help: "Times the basic data change stream was lost, the caches cleared and the stream resubscribed.",
	}))
	if err != nil {
		return nil, fmt.Errorf("downstream: register metrics: %w", err)
	}
	m.resubscribes = resub
	return m, nil
}
