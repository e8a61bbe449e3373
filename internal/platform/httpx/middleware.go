package httpx

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Middleware wraps a handler.
type Middleware func(http.Handler) http.Handler

// Chain applies mws so the first is outermost.
func Chain(h http.Handler, mws ...Middleware) http.Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// Recover turns a panic in a handler into a 500 internal error and a log line,
// instead of a dropped connection.
func Recover(logger *slog.Logger) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					logger.Error("panic in handler", "method", r.Method, "path", r.URL.Path, "panic", v)
					WriteError(w, http.StatusInternalServerError, "internal", "internal error")
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// LimitBody caps request bodies at max bytes; reading past it fails with an
// error that IsTooLarge recognises, which handlers answer with 413.
func LimitBody(max int64) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > max {
				WriteError(w, http.StatusRequestEntityTooLarge, "payload_too_large",
					"request body is larger than "+strconv.FormatInt(max, 10)+" bytes")
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, max)
			next.ServeHTTP(w, r)
		})
	}
}

// IsTooLarge reports whether err came from reading past the body limit.
func IsTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Flush passes through so server-sent event streams work behind the middleware.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Observe logs each request at debug level and records
// waypost_http_requests_total and waypost_http_request_duration_seconds by
// route pattern (not raw path, to keep label cardinality bounded).
func Observe(logger *slog.Logger, reg prometheus.Registerer) Middleware {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "waypost", Subsystem: "http", Name: "requests_total",
		Help: "HTTP requests by route pattern, method and status code.",
	}, []string{"route", "method", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "waypost", Subsystem: "http", Name: "request_duration_seconds",
		Help:    "HTTP request latency by route pattern.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"route"})
	reg.MustRegister(requests, duration)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
			next.ServeHTTP(rec, r)
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			elapsed := time.Since(start)
			requests.WithLabelValues(route, r.Method, strconv.Itoa(rec.status)).Inc()
			duration.WithLabelValues(route).Observe(elapsed.Seconds())
			logger.Debug("http", "method", r.Method, "path", r.URL.Path, "status", rec.status, "took", elapsed)
		})
	}
}

// Router is where a component registers its routes; *http.ServeMux is one.
type Router interface {
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// Wrap returns a Router that registers each route on mux behind mw, so the
// mux still matches (and reports) every route's own pattern.
func Wrap(mux *http.ServeMux, mw Middleware) Router { return wrapped{mux: mux, mw: mw} }

type wrapped struct {
	mux *http.ServeMux
	mw  Middleware
}

func (w wrapped) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	w.mux.Handle(pattern, w.mw(http.HandlerFunc(h)))
}
