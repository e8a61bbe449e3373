package bench

import (
	"bytes"
	"fmt"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// CPU is the processor time a run cost: the server's, read from its
// /metrics before and after, and the load generator's own (with the sink).
// On a machine the generator shares with the server, and whose speed
// drifts, CPU time per delivery compares runs better than deliveries per
// second.
type CPU struct {
	Server    time.Duration
	Generator time.Duration
	// ServerErr says why Server is unknown (no /metrics, no process
	// collector); Server is then zero.
	ServerErr error
}

// cpuMetric is the Prometheus process collector's counter of user and
// system CPU seconds.
const cpuMetric = "process_cpu_seconds_total"

// ProcessCPU returns the value of process_cpu_seconds_total in a Prometheus
// text exposition.
func ProcessCPU(exposition []byte) (time.Duration, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(exposition))
	if err != nil {
		return 0, fmt.Errorf("bench: bad value or format in the server's metrics: %w", err)
	}
	mf := mfs[cpuMetric]
	if mf == nil || len(mf.GetMetric()) == 0 {
		return 0, fmt.Errorf("bench: no %s in the server's metrics", cpuMetric)
	}
	m := mf.GetMetric()[0]
	secs := m.GetCounter().GetValue()
	if m.GetCounter() == nil {
		secs = m.GetUntyped().GetValue()
	}
	if secs < 0 {
		return 0, fmt.Errorf("bench: %s: bad value %g", cpuMetric, secs)
	}
	return time.Duration(secs * float64(time.Second)), nil
}
