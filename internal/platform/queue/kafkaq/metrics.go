package kafkaq

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	platmetrics "github.com/waypost/waypost/internal/platform/metrics"
)

// metrics are the per-topic counters of one or more Queues sharing a registerer.
type metrics struct {
	published      *prometheus.CounterVec
	delivered      *prometheus.CounterVec
	acked          *prometheus.CounterVec
	nacked         *prometheus.CounterVec
	redelivered    *prometheus.CounterVec
	delayForwarded *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	vec := func(name, help, label string) (*prometheus.CounterVec, error) {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "waypost", Subsystem: "kafkaq", Name: name, Help: help,
		}, []string{label})
		// A second Queue on the same registerer shares the first one's counters.
		c, err := platmetrics.Register(reg, c)
		if err != nil {
			return nil, fmt.Errorf("register %s: %w", name, err)
		}
		return c, nil
	}
	var m metrics
	for _, c := range []struct {
		dst               **prometheus.CounterVec
		name, help, label string
	}{
		{&m.published, "published_total", "Messages stored by Publish.", "topic"},
		{&m.delivered, "delivered_total", "Deliveries handed to handlers, redeliveries included.", "topic"},
		{&m.acked, "acked_total", "Deliveries acked.", "topic"},
		{&m.nacked, "nacked_total", "Deliveries nacked.", "topic"},
		{&m.redelivered, "redelivered_total", "Deliveries with Attempt above 1.", "topic"},
		{&m.delayForwarded, "delay_forwarded_total", "Records the delay scheduler moved out of a tier.", "tier_topic"},
	} {
		v, err := vec(c.name, c.help, c.label)
		if err != nil {
			return nil, err
		}
		*c.dst = v
	}
	return &m, nil
}
