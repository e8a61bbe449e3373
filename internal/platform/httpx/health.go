package httpx

import (
	"context"
	"net/http"
	"sort"
	"sync"
	"time"
)

// Check reports whether one dependency is reachable.
type Check func(ctx context.Context) error

// Health serves /healthz (the process is alive) and /readyz (every
// dependency answers within the timeout; the body names any that does not).
type Health struct {
	checks  map[string]Check
	timeout time.Duration

	mu       sync.Mutex
	draining bool
}

// NewHealth returns a Health over the named checks.
func NewHealth(checks map[string]Check, timeout time.Duration) *Health {
	return &Health{checks: checks, timeout: timeout}
}

// SetDraining makes /readyz answer 503 so load balancers stop sending new
// work while the process drains.
func (h *Health) SetDraining() {
	h.mu.Lock()
	h.draining = true
	h.mu.Unlock()
}

// Register adds GET /healthz and GET /readyz to mux.
func (h *Health) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", h.ready)
}

type readiness struct {
	Status   string            `json:"status"`
	Checks   map[string]string `json:"checks"`
	Failing  []string          `json:"failing,omitempty"`
	Draining bool              `json:"draining,omitempty"`
}

func (h *Health) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	res := readiness{Status: "ok", Checks: make(map[string]string, len(h.checks))}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, check := range h.checks {
		wg.Go(func() {
			status := "ok"
			if err := check(ctx); err != nil {
				status = err.Error()
			}
			mu.Lock()
			res.Checks[name] = status
			if status != "ok" {
				res.Failing = append(res.Failing, name)
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	sort.Strings(res.Failing)
	h.mu.Lock()
	res.Draining = h.draining
	h.mu.Unlock()
	code := http.StatusOK
	if len(res.Failing) > 0 || res.Draining {
		res.Status, code = "unavailable", http.StatusServiceUnavailable
	}
	WriteJSON(w, code, res)
}
