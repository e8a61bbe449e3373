// Package access is push's access layer: it owns POST /api/v1/send, from
// validating the request through loading and rendering the template and
// checking receivers to publishing one task per message and the anchors that
// trace it, with Idempotency-Key replay.
package access

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/waypost/waypost/internal/platform/kv"
	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/push"
)

// TemplateSource loads a template by id (store-backed in production); a
// missing template is an error wrapping push.ErrUnknownTemplate.
type TemplateSource interface {
	Template(ctx context.Context, id int64) (push.Template, error)
}

// Config bounds requests and sets cache and idempotency lifetimes; zero
// fields take the defaults documented on each.
type Config struct {
	// MaxMessages per request; default 500.
	MaxMessages int
	// MaxReceivers per message; default 100.
	MaxReceivers int
	// MaxBodyBytes caps the request body; default 4 MiB.
	MaxBodyBytes int64
	// CacheTTL is how long a loaded template is used before it must be
	// reloaded; default and maximum 5 s, so an edit is seen within 5 s.
	CacheTTL time.Duration
	// RefreshAhead starts a background reload this long before an entry
	// expires, so hot templates never make a request wait; default 1 s.
	RefreshAhead time.Duration
	// LoadTimeout bounds one template load, detached from the request that
	// started it; default 5 s.
	LoadTimeout time.Duration
	// IdempotencyTTL is how long an accepted response is replayed; default 24 h.
	IdempotencyTTL time.Duration
	// InFlightTTL is how long an in-flight Idempotency-Key marker lives, so a
	// crashed instance does not block the key for a day; default 1 min.
	InFlightTTL time.Duration
	// PublishFlights is how many queue publishes may run at once; requests
	// arriving meanwhile are published together in the next one. Default 1.
	PublishFlights int
	// BatchMessages and BatchBytes bound what requests share one publish
	// (a larger request goes alone); defaults 1024 tasks and 4 MiB.
	BatchMessages int
	BatchBytes    int
	// PublishTimeout bounds one shared publish; default 10 s.
	PublishTimeout time.Duration
}

// Defaults.
const (
	DefaultMaxMessages    = 500
	DefaultMaxReceivers   = 100
	DefaultMaxBodyBytes   = 4 << 20
	MaxCacheTTL           = 5 * time.Second
	DefaultRefreshAhead   = time.Second
	DefaultLoadTimeout    = 5 * time.Second
	DefaultIdempotencyTTL = 24 * time.Hour
	DefaultInFlightTTL    = time.Minute
	DefaultPublishFlights = 1
	DefaultBatchMessages  = 1024
	DefaultBatchBytes     = 4 << 20
	DefaultPublishTimeout = 10 * time.Second
)

func (c Config) withDefaults() Config {
	if c.MaxMessages <= 0 {
		c.MaxMessages = DefaultMaxMessages
	}
	if c.MaxReceivers <= 0 {
		c.MaxReceivers = DefaultMaxReceivers
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.CacheTTL <= 0 || c.CacheTTL > MaxCacheTTL {
		c.CacheTTL = MaxCacheTTL
	}
	if c.RefreshAhead <= 0 {
		c.RefreshAhead = DefaultRefreshAhead
	}
	if c.RefreshAhead >= c.CacheTTL {
		c.RefreshAhead = c.CacheTTL / 2
	}
	if c.LoadTimeout <= 0 {
		c.LoadTimeout = DefaultLoadTimeout
	}
	if c.IdempotencyTTL <= 0 {
		c.IdempotencyTTL = DefaultIdempotencyTTL
	}
	if c.InFlightTTL <= 0 {
		c.InFlightTTL = DefaultInFlightTTL
	}
	if c.PublishFlights <= 0 {
		c.PublishFlights = DefaultPublishFlights
	}
	if c.BatchMessages <= 0 {
		c.BatchMessages = DefaultBatchMessages
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = DefaultBatchBytes
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = DefaultPublishTimeout
	}
	return c
}

// Option adjusts a Handler.
type Option func(*Handler)

// WithAppID takes the authenticated app id from the request context (set by
// the auth middleware); it scopes Idempotency-Key records per app.
func WithAppID(fn func(ctx context.Context) string) Option {
	return func(h *Handler) {
		if fn != nil {
			h.appID = fn
		}
	}
}

// WithClock replaces time.Now for the template cache, businessIds,
// messageIds and anchors; tests move time by hand with it.
func WithClock(now func() time.Time) Option {
	return func(h *Handler) {
		if now != nil {
			h.now = now
		}
	}
}

// Handler serves POST /api/v1/send.
type Handler struct {
	cfg     Config
	q       queue.Queue
	kv      kv.Store
	log     *slog.Logger
	appID   func(context.Context) string
	now     func() time.Time
	cache   *Cache
	ids     *idGen
	pub     *publisher
	metrics *metrics
}

// New builds the send handler. src loads templates, q takes tasks and
// anchors, store keeps Idempotency-Key records; logger and reg may be nil.
func New(cfg Config, src TemplateSource, q queue.Queue, store kv.Store, logger *slog.Logger, reg prometheus.Registerer, opts ...Option) (*Handler, error) {
	if src == nil || q == nil || store == nil {
		return nil, errors.New("access: new: template source, queue and kv store are required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("access: new: %w", err)
	}
	h := &Handler{
		cfg:     cfg.withDefaults(),
		q:       q,
		kv:      store,
		log:     logger,
		appID:   func(context.Context) string { return "" },
		now:     time.Now,
		metrics: m,
	}
	for _, o := range opts {
		o(h)
	}
	h.cache = NewCache(src, CacheConfig{
		TTL: h.cfg.CacheTTL, RefreshAhead: h.cfg.RefreshAhead, LoadTimeout: h.cfg.LoadTimeout,
		Now: h.now, Logger: logger, OnLoad: m.cacheLoads.Inc,
	})
	h.ids = newIDGen(h.now)
	h.pub = newPublisher(q, h.cfg)
	return h, nil
}

// Register mounts POST /api/v1/send on mux, wrapped by wrap (the auth
// middleware requiring the "send" scope); a nil wrap mounts it bare.
func (h *Handler) Register(mux *http.ServeMux, wrap func(http.Handler) http.Handler) {
	var hh http.Handler = h
	if wrap != nil {
		hh = wrap(hh)
	}
	mux.Handle("POST /api/v1/send", hh)
}

// Close waits for background template refreshes and shared publishes to
// finish.
func (h *Handler) Close() {
	h.cache.Close()
	h.pub.close()
}

// metrics are the handler's Prometheus series; the per-request ones are
// resolved once, not looked up by label on every request.
type metrics struct {
	requests   *prometheus.CounterVec
	receivers  *prometheus.CounterVec
	cacheLoads prometheus.Counter

	accepted         prometheus.Counter
	validReceivers   prometheus.Counter
	invalidReceivers prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "waypost_push_send_requests_total",
			Help: "Send requests by outcome code (accepted or the error code).",
		}, []string{"code"}),
		receivers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "waypost_push_send_receivers_total",
			Help: "Receivers of accepted send requests, valid or invalid.",
		}, []string{"result"}),
		cacheLoads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "waypost_push_template_loads_total",
			Help: "Template loads from the source by the access cache.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.receivers, m.cacheLoads} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	m.accepted = m.requests.WithLabelValues("accepted")
	m.validReceivers = m.receivers.WithLabelValues("valid")
	m.invalidReceivers = m.receivers.WithLabelValues("invalid")
	return m, nil
}
