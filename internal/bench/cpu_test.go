package bench

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/require"
)

func TestProcessCPU(t *testing.T) {
	t.Run("from a real process collector", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
			prometheus.NewCounter(prometheus.CounterOpts{Name: "process_cpu_seconds_total_shadow", Help: "not it"}))
		mfs, err := reg.Gather()
		require.NoError(t, err)
		var buf bytes.Buffer
		for _, mf := range mfs {
			_, err := expfmt.MetricFamilyToText(&buf, mf)
			require.NoError(t, err)
		}
		d, err := ProcessCPU(buf.Bytes())
		if strings.Contains(buf.String(), "process_cpu_seconds_total ") {
			require.NoError(t, err)
			require.Positive(t, d)
		} else {
			t.Skip("no process collector on this platform")
		}
	})
	t.Run("the value, not a look-alike", func(t *testing.T) {
		text := "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n" +
			"# TYPE process_cpu_seconds_total counter\n" +
			"process_cpu_seconds_total_shadow 99\n" +
			"process_cpu_seconds_total 12.5\n"
		d, err := ProcessCPU([]byte(text))
		require.NoError(t, err)
		require.Equal(t, 12500*time.Millisecond, d)
	})
	t.Run("missing or malformed", func(t *testing.T) {
		_, err := ProcessCPU([]byte("go_goroutines 12\n"))
		require.ErrorContains(t, err, "no process_cpu_seconds_total")
		_, err = ProcessCPU([]byte("process_cpu_seconds_total abc\n"))
		require.ErrorContains(t, err, "bad value")
	})
}

func TestPrintCPU(t *testing.T) {
	r := &Result{Elapsed: time.Second, Accepted: 10, Messages: 10, ReceiverMessages: 100}
	var out bytes.Buffer
	require.NoError(t, Print(&out, r, &Delivery{Expected: 100, Delivered: 100, Window: time.Second},
		&CPU{Server: 20 * time.Millisecond, Generator: 5 * time.Millisecond}))
	require.Regexp(t, `server CPU\s+20ms \(200µs per delivery\)`, out.String())
	require.Regexp(t, `generator CPU\s+5ms \(50µs per delivery\)`, out.String())

	out.Reset()
	require.NoError(t, Print(&out, r, nil, &CPU{ServerErr: errors.New("no metrics"), Generator: time.Millisecond}))
	require.Regexp(t, `server CPU\s+unknown: no metrics`, out.String())
	require.Regexp(t, `generator CPU\s+1ms \(10µs per receiver-message\)`, out.String())
}
