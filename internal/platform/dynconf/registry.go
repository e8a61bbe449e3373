package dynconf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultInterval is how often a Registry polls for changes; with it an
// update reaches every instance well within 5 s.
const DefaultInterval = time.Second

// Setting is one live, typed value. Get is safe for concurrent use and
// never blocks.
type Setting[T any] struct {
	name     string
	def      T
	validate func(T) error
	cur      atomic.Pointer[snapshot[T]]

	mu       sync.Mutex
	watchers []func(T)
}

type snapshot[T any] struct {
	v       T
	version int64
}

// Name is the setting's name.
func (s *Setting[T]) Name() string { return s.name }

// Get returns the current value: the stored one, or the default while none
// is stored.
func (s *Setting[T]) Get() T { return s.cur.Load().v }

// Version is the stored version of the current value; 0 for the default.
func (s *Setting[T]) Version() int64 { return s.cur.Load().version }

// OnChange registers fn to be called with every new value after it is
// applied, from the registry's goroutine; fn must not block for long.
func (s *Setting[T]) OnChange(fn func(T)) {
	s.mu.Lock()
	s.watchers = append(s.watchers, fn)
	s.mu.Unlock()
}

// DecodeStrict decodes one JSON value into v, refusing unknown fields and
// trailing data, so a typo in a setting's key is an error rather than a
// silent default. Every setting is decoded this way.
func DecodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// decode parses raw strictly over a copy of the default, so an omitted
// field keeps its default, then validates it.
func (s *Setting[T]) decode(raw []byte) (T, error) {
	v := clone(s.def)
	if err := DecodeStrict(raw, &v); err != nil {
		return v, fmt.Errorf("setting %q: %v: %w", s.name, err, ErrInvalid)
	}
	if s.validate != nil {
		if err := s.validate(v); err != nil {
			return v, fmt.Errorf("setting %q: %v: %w", s.name, err, ErrInvalid)
		}
	}
	return v, nil
}

// clone deep-copies v through JSON so maps and slices of the default are
// never shared with a decoded value.
func clone[T any](v T) T {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out T
	if json.Unmarshal(b, &out) != nil {
		return v
	}
	return out
}

func (s *Setting[T]) apply(raw []byte, version int64) error {
	v, err := s.decode(raw)
	if err != nil {
		return err
	}
	s.set(v, version)
	return nil
}

func (s *Setting[T]) set(v T, version int64) {
	s.cur.Store(&snapshot[T]{v: v, version: version})
	s.mu.Lock()
	ws := slices.Clone(s.watchers)
	s.mu.Unlock()
	for _, fn := range ws {
		fn(v)
	}
}

func (s *Setting[T]) reset() {
	if s.Version() != 0 {
		s.set(clone(s.def), 0)
	}
}

func (s *Setting[T]) current() (any, int64) {
	c := s.cur.Load()
	return c.v, c.version
}

func (s *Setting[T]) defaultValue() any { return s.def }

func (s *Setting[T]) check(raw []byte) error {
	_, err := s.decode(raw)
	return err
}

// entry is what the registry needs of any Setting, whatever its T.
type entry interface {
	Name() string
	apply(raw []byte, version int64) error
	reset()
	check(raw []byte) error
	current() (any, int64)
	defaultValue() any
}

// Registry holds a process's settings and keeps them current.
type Registry struct {
	st       *Store
	interval time.Duration
	log      *slog.Logger

	mu       sync.Mutex
	settings map[string]entry
	applied  map[string]int64 // version applied per name; 0 = default

	polls  prometheus.Counter
	errs   prometheus.Counter
	change *prometheus.CounterVec
}

// Config tunes a Registry.
type Config struct {
	// Interval between polls; default DefaultInterval.
	Interval time.Duration
}

// NewRegistry returns a registry over st; logger and reg may be nil.
func NewRegistry(st *Store, cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Registry, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Registry{
		st: st, interval: cfg.Interval, log: logger.With("component", "dynconf"),
		settings: map[string]entry{}, applied: map[string]int64{},
		polls: prometheus.NewCounter(prometheus.CounterOpts{Name: "waypost_settings_polls_total",
			Help: "Polls of the settings table."}),
		errs: prometheus.NewCounter(prometheus.CounterOpts{Name: "waypost_settings_poll_errors_total",
			Help: "Polls of the settings table that failed."}),
		change: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "waypost_settings_applied_total",
			Help: "Setting values applied, by setting and result (ok, invalid)."}, []string{"setting", "result"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{r.polls, r.errs, r.change} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("dynconf: metrics: %w", err)
			}
		}
	}
	return r, nil
}

// Register adds a setting named name with default def and an optional
// validation; it panics on a duplicate name, a programming error.
func Register[T any](r *Registry, name string, def T, validate func(T) error) *Setting[T] {
	s := &Setting[T]{name: name, def: def, validate: validate}
	s.cur.Store(&snapshot[T]{v: clone(def)})
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.settings[name]; dup {
		panic(fmt.Sprintf("dynconf: setting %q registered twice", name))
	}
	r.settings[name] = s
	return s
}

// Names lists the registered settings, sorted.
func (r *Registry) Names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.settings))
	for n := range r.settings {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (r *Registry) lookup(name string) (entry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.settings[name]
	if !ok {
		return nil, fmt.Errorf("setting %q: %w", name, ErrUnknownSetting)
	}
	return s, nil
}

// Refresh reads every changed setting now. A stored value that no longer
// validates (written by an older version, say) is logged and skipped: the
// current value keeps serving.
func (r *Registry) Refresh(ctx context.Context) error {
	r.polls.Inc()
	versions, err := r.st.Versions(ctx)
	if err != nil {
		r.errs.Inc()
		return err
	}
	r.mu.Lock()
	var changed []string
	for name := range r.settings {
		if versions[name] != r.applied[name] {
			changed = append(changed, name)
		}
	}
	r.mu.Unlock()
	var errs []error
	for _, name := range changed {
		if err := r.load(ctx, name, versions[name]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (r *Registry) load(ctx context.Context, name string, version int64) error {
	s, err := r.lookup(name)
	if err != nil {
		return err
	}
	if version == 0 { // deleted by hand: back to the default
		s.reset()
		r.markApplied(name, 0)
		return nil
	}
	e, err := r.st.Get(ctx, name)
	if errors.Is(err, ErrNotFound) {
		s.reset()
		r.markApplied(name, 0)
		return nil
	}
	if err != nil {
		r.errs.Inc()
		return err
	}
	if err := s.apply(e.Value, e.Version); err != nil {
		r.change.WithLabelValues(name, "invalid").Inc()
		r.log.Error("stored setting does not validate; keeping the current value", "setting", name,
			"version", e.Version, "err", err)
		r.markApplied(name, e.Version) // do not log it again every poll
		return nil
	}
	r.change.WithLabelValues(name, "ok").Inc()
	r.log.Info("setting applied", "setting", name, "version", e.Version, "by", e.UpdatedBy)
	r.markApplied(name, e.Version)
	return nil
}

func (r *Registry) markApplied(name string, v int64) {
	r.mu.Lock()
	r.applied[name] = v
	r.mu.Unlock()
}

// Run polls until ctx ends; it returns nil then. Failed polls are logged
// and retried at the next tick: the current values keep serving.
func (r *Registry) Run(ctx context.Context) error {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := r.Refresh(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("poll settings", "err", err)
			}
		}
	}
}

// Update validates raw as the new value of name, stores it (with
// ifVersion as in Store.Put) and applies it here at once; other instances
// follow within one poll interval.
func (r *Registry) Update(ctx context.Context, name string, raw json.RawMessage, by string, ifVersion int64) (Entry, error) {
	s, err := r.lookup(name)
	if err != nil {
		return Entry{}, err
	}
	if err := s.check(raw); err != nil {
		return Entry{}, err
	}
	e, err := r.st.Put(ctx, name, raw, by, ifVersion)
	if err != nil {
		return Entry{}, err
	}
	if err := r.load(ctx, name, e.Version); err != nil {
		return e, err
	}
	return e, nil
}

// View is a setting as the API shows it: its current value, the stored
// version (0 while the default applies) and the default.
type View struct {
	Name    string `json:"name"`
	Value   any    `json:"value"`
	Version int64  `json:"version"`
	Default any    `json:"default"`
}

// View returns the current view of name.
func (r *Registry) View(name string) (View, error) {
	s, err := r.lookup(name)
	if err != nil {
		return View{}, err
	}
	v, version := s.current()
	return View{Name: name, Value: v, Version: version, Default: s.defaultValue()}, nil
}
