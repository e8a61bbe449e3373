package natsq

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	platmetrics "github.com/waypost/waypost/internal/platform/metrics"
)

// metrics counts messages per topic. The names are shared with the other
// queue backends; the const label backend="nats" tells them apart.
type metrics struct {
	published, delivered, acked, nacked, redelivered *prometheus.CounterVec

	mu     sync.Mutex
	topics map[string]*topicMetrics
}

// topicMetrics caches one topic's counters so the hot path skips label lookups.
type topicMetrics struct {
	published, delivered, acked, nacked, redelivered prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	vec := func(name, help string) (*prometheus.CounterVec, error) {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace:   "waypost",
			Subsystem:   "queue",
			Name:        name,
			Help:        help,
			ConstLabels: prometheus.Labels{"backend": "nats"},
		}, []string{"topic"})
		// A second Queue on the same registry shares the counters.
		return platmetrics.Register(reg, c)
	}
	m := &metrics{topics: map[string]*topicMetrics{}}
	var err error
	for _, c := range []struct {
		dst        **prometheus.CounterVec
		name, help string
	}{
		{&m.published, "published_total", "Messages stored by Publish."},
		{&m.delivered, "delivered_total", "Deliveries handed to handlers, redeliveries included."},
		{&m.acked, "acked_total", "Deliveries acked by handlers."},
		{&m.nacked, "nacked_total", "Deliveries nacked by handlers."},
		{&m.redelivered, "redelivered_total", "Deliveries with Attempt above 1."},
	} {
		if *c.dst, err = vec(c.name, c.help); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) topic(name string) *topicMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.topics[name]
	if !ok {
		t = &topicMetrics{
			published:   m.published.WithLabelValues(name),
			delivered:   m.delivered.WithLabelValues(name),
			acked:       m.acked.WithLabelValues(name),
			nacked:      m.nacked.WithLabelValues(name),
			redelivered: m.redelivered.WithLabelValues(name),
		}
		m.topics[name] = t
	}
	return t
}
