package handler

import "github.com/prometheus/client_golang/prometheus"

// metrics holds the handler's collectors. Pool series carry the labels
// channel and type; send outcomes carry channel and result.
type metrics struct {
	busy, queued        *prometheus.GaugeVec
	completed, rejected *prometheus.CounterVec
	latency             *prometheus.HistogramVec
	sends               *prometheus.CounterVec
	anchors             *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	labels := []string{"channel", "type"}
	m := &metrics{
		busy: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "waypost", Subsystem: "push_handler",
			Name: "pool_busy", Help: "Workers of a pool running a task."}, labels),
		queued: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "waypost", Subsystem: "push_handler",
			Name: "pool_queued", Help: "Tasks waiting for a worker of a pool."}, labels),
		completed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "waypost", Subsystem: "push_handler",
			Name: "pool_completed_total", Help: "Tasks a pool finished handling, settled or handed back."}, labels),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "waypost", Subsystem: "push_handler",
			Name: "pool_rejected_total", Help: "Deliveries handed back because a pool's queue was full."}, labels),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "waypost", Subsystem: "push_handler",
			Name: "pool_task_seconds", Help: "Time a worker spent on one task.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9)}, labels),
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "waypost", Subsystem: "push_handler",
			Name: "sends_total", Help: "Per-receiver outcomes: sent, failed, retry, busy, skipped."}, []string{"channel", "result"}),
		anchors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "waypost", Subsystem: "push_handler",
			Name: "anchors_total", Help: "Anchors by fate: published, dropped_overflow, dropped_publish."}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.busy, m.queued, m.completed, m.rejected, m.latency, m.sends, m.anchors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) pool(ch, mt string) poolMetrics {
	return poolMetrics{
		busy:      m.busy.WithLabelValues(ch, mt),
		queued:    m.queued.WithLabelValues(ch, mt),
		completed: m.completed.WithLabelValues(ch, mt),
		rejected:  m.rejected.WithLabelValues(ch, mt),
		latency:   m.latency.WithLabelValues(ch, mt),
	}
}
