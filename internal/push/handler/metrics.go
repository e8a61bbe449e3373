package handler

import "github.com/prometheus/client_golang/prometheus"

// metrics holds the handler's collectors. Pool series carry the labels
// channel and type; send outcomes carry channel and result; stage series
// carry the stage.
type metrics struct {
	busy, queued        *prometheus.GaugeVec
	workers, queueLimit *prometheus.GaugeVec
	inFlight            *prometheus.GaugeVec
	completed, rejected *prometheus.CounterVec
	latency             *prometheus.HistogramVec
	sends               *prometheus.CounterVec
	anchors             *prometheus.CounterVec
	stageReceivers      *prometheus.CounterVec
	stageSeconds        *prometheus.HistogramVec
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
		workers: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "waypost", Subsystem: "push_handler",
			Name: "pool_workers", Help: "Configured workers of a pool."}, labels),
		queueLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "waypost", Subsystem: "push_handler",
			Name: "pool_queue_limit", Help: "Configured queue length of a pool."}, labels),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "waypost", Subsystem: "push_handler",
			Name: "pool_in_flight_limit", Help: "Deliveries a pool's subscription may hold unsettled."}, labels),
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
		stageReceivers: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "waypost", Subsystem: "push_handler",
			Name: "stage_receivers_total", Help: "Receivers leaving a rule stage, by result: pass, handed_back or the anchor state it recorded."},
			[]string{"stage", "result"}),
		stageSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "waypost", Subsystem: "push_handler",
			Name: "stage_seconds", Help: "Time one task spent in a rule stage (the limit stage includes waiting for capacity).",
			Buckets: prometheus.ExponentialBuckets(0.00001, 4, 11)}, []string{"stage"}),
	}
	for _, c := range []prometheus.Collector{m.busy, m.queued, m.workers, m.queueLimit, m.inFlight, m.completed, m.rejected,
		m.latency, m.sends, m.anchors, m.stageReceivers, m.stageSeconds} {
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
		workers:   m.workers.WithLabelValues(ch, mt),
		queueLim:  m.queueLimit.WithLabelValues(ch, mt),
		inFlight:  m.inFlight.WithLabelValues(ch, mt),
		completed: m.completed.WithLabelValues(ch, mt),
		rejected:  m.rejected.WithLabelValues(ch, mt),
		latency:   m.latency.WithLabelValues(ch, mt),
	}
}

// sendCounters are one channel's series of sends_total, resolved once:
// they count every receiver, and a label lookup per receiver is wasted work.
type sendCounters struct {
	sent, failed, retry, busy, skipped prometheus.Counter
}

func (m *metrics) sendCounters(ch string) sendCounters {
	return sendCounters{
		sent:    m.sends.WithLabelValues(ch, "sent"),
		failed:  m.sends.WithLabelValues(ch, "failed"),
		retry:   m.sends.WithLabelValues(ch, "retry"),
		busy:    m.sends.WithLabelValues(ch, "busy"),
		skipped: m.sends.WithLabelValues(ch, "skipped"),
	}
}
