package metrics

import (
	"io"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestHandlerServesRuntimeProcessAndOwnMetrics(t *testing.T) {
	reg := NewRegistry("v1.2.3")
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "test_total", Help: "t"})
	OrNop(reg).MustRegister(c)
	c.Add(2)

	rec := httptest.NewRecorder()
	Handler(reg).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	require.Equal(t, 200, rec.Code)
	require.Contains(t, rec.Header().Get("Content-Type"), "text/plain")
	for _, want := range []string{"go_goroutines", "process_cpu_seconds_total", `waypost_build_info{`, `version="v1.2.3"`, "waypost_test_total 2"} {
		require.Contains(t, string(body), want)
	}
}

func TestOrNop(t *testing.T) {
	require.NotNil(t, OrNop(nil))
	reg := prometheus.NewRegistry()
	require.Same(t, reg, OrNop(reg))
}

func TestRegisterSharesAnExistingCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "waypost_test_total", Help: "A test counter."}
	first, err := Register(reg, prometheus.NewCounter(opts))
	require.NoError(t, err)
	second, err := Register(reg, prometheus.NewCounter(opts))
	require.NoError(t, err)
	second.Inc()
	require.Equal(t, 1.0, testutil.ToFloat64(first), "the second instance counts into the first one's series")

	_, err = Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "waypost_test_total", Help: "Other."}))
	require.Error(t, err, "a different collector under the same name is refused")

	c := prometheus.NewCounter(opts)
	got, err := Register(nil, c)
	require.NoError(t, err)
	require.Same(t, c, got, "a nil registerer registers nothing")
}
