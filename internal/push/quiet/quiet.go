// Package quiet decides what the push handler does with a message that falls
// in the night window of its template's time zone: continue, drop it
// (quiet_dropped) or delay it to the next morning (quiet_delayed).
//
// The package only decides and returns the instant to deliver at; scheduling
// the delayed task durably is the handler's job. The window and the delay
// target are live settings (Rule.Set); the policy (none|drop|delay) comes from
// the template.
package quiet

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/waypost/waypost/internal/platform/dynconf"
	"github.com/waypost/waypost/internal/platform/metrics"
	"github.com/waypost/waypost/internal/push"
)

// ErrInvalidSettings is wrapped by every settings validation error.
var ErrInvalidSettings = errors.New("invalid quiet-hours settings")

// ClockTime is a wall-clock time of day, minutes after midnight, written
// "HH:MM" (00:00–23:59) in JSON.
type ClockTime int

// At returns the ClockTime h:m; it does not validate.
func At(h, m int) ClockTime { return ClockTime(h*60 + m) }

// String renders the time as "HH:MM".
func (c ClockTime) String() string { return fmt.Sprintf("%02d:%02d", int(c)/60, int(c)%60) }

// ParseClockTime parses "HH:MM" with 00 ≤ HH ≤ 23 and 00 ≤ MM ≤ 59.
func ParseClockTime(s string) (ClockTime, error) {
	digit := func(i int) (int, bool) { return int(s[i] - '0'), s[i] >= '0' && s[i] <= '9' }
	if len(s) != 5 || s[2] != ':' {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	h1, ok1 := digit(0)
	h2, ok2 := digit(1)
	m1, ok3 := digit(3)
	m2, ok4 := digit(4)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	h, m := h1*10+h2, m1*10+m2
	if h > 23 || m > 59 {
		return 0, fmt.Errorf("%q is not a time of day between 00:00 and 23:59", s)
	}
	return At(h, m), nil
}

// MarshalJSON writes "HH:MM".
func (c ClockTime) MarshalJSON() ([]byte, error) { return json.Marshal(c.String()) }

// UnmarshalJSON reads "HH:MM".
func (c *ClockTime) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a string \"HH:MM\": %w", err)
	}
	v, err := ParseClockTime(s)
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// Settings is the night window [Start, End) and the time of day a delayed
// message is released. End before Start wraps midnight (22:00–07:00); Start
// equal to End means no quiet hours.
type Settings struct {
	Start      ClockTime `json:"start"`
	End        ClockTime `json:"end"`
	DelayUntil ClockTime `json:"delayUntil"`
}

// DefaultSettings is the seed's window 00:00–08:00, delayed messages released at 09:00.
func DefaultSettings() Settings {
	return Settings{Start: At(0, 0), End: At(8, 0), DelayUntil: At(9, 0)}
}

// ParseSettings reads settings JSON; fields left out keep their defaults and
// unknown fields are an error. The result is validated.
func ParseSettings(data []byte) (Settings, error) {
	s := DefaultSettings()
	if err := dynconf.DecodeStrict(data, &s); err != nil {
		return Settings{}, fmt.Errorf("quiet settings: %w: %w", err, ErrInvalidSettings)
	}
	if err := s.Validate(); err != nil {
		return Settings{}, err
	}
	return s, nil
}

// Validate reports settings the rule cannot use: a time outside the day, or a
// release time inside the window (the message would be released into quiet
// hours again).
func (s Settings) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    ClockTime
	}{{"start", s.Start}, {"end", s.End}, {"delayUntil", s.DelayUntil}} {
		if f.v < 0 || f.v >= 24*60 {
			errs = append(errs, fmt.Errorf("quiet settings: %s: %d minutes is not a time of day: %w", f.name, int(f.v), ErrInvalidSettings))
		}
	}
	if len(errs) == 0 && s.contains(s.DelayUntil) {
		errs = append(errs, fmt.Errorf("quiet settings: delayUntil: %s falls inside the quiet window %s–%s: %w",
			s.DelayUntil, s.Start, s.End, ErrInvalidSettings))
	}
	return errors.Join(errs...)
}

// contains reports whether minute-of-day m is in [Start, End), wrapping midnight.
func (s Settings) contains(m ClockTime) bool {
	return s.containsOffset(time.Duration(m) * time.Minute)
}

// containsOffset reports whether an offset since local midnight is in the window.
func (s Settings) containsOffset(d time.Duration) bool {
	start, end := time.Duration(s.Start)*time.Minute, time.Duration(s.End)*time.Minute
	switch {
	case start == end:
		return false
	case start < end:
		return d >= start && d < end
	default: // wraps midnight
		return d >= start || d < end
	}
}

// Action is what the handler does with a message.
type Action uint8

// Actions of a Decision.
const (
	Continue Action = iota
	Drop
	Delay
)

// String names the action.
func (a Action) String() string {
	switch a {
	case Drop:
		return "drop"
	case Delay:
		return "delay"
	}
	return "continue"
}

// State is the anchor state the action records; Continue records none.
func (a Action) State() string {
	switch a {
	case Drop:
		return push.StateQuietDropped
	case Delay:
		return push.StateQuietDelayed
	}
	return ""
}

// Decision is the outcome for one message. Until is set only for Delay: the
// instant the message is due again.
type Decision struct {
	Action Action
	Until  time.Time
}

// Decide applies settings s to a message due at now under policy, evaluating
// the window in loc (nil: UTC). An unknown policy behaves as none.
func Decide(s Settings, now time.Time, loc *time.Location, policy push.Quiet) Decision {
	if policy != push.QuietDrop && policy != push.QuietDelay {
		return Decision{Action: Continue}
	}
	if loc == nil {
		loc = time.UTC
	}
	local := now.In(loc)
	y, mo, d := local.Date()
	// The offset is read off the wall clock, not measured from midnight,
	// so a day that is 23 or 25 hours long (DST) still puts 08:00 at 8h.
	h, mi, sec := local.Clock()
	offset := time.Duration(h)*time.Hour + time.Duration(mi)*time.Minute +
		time.Duration(sec)*time.Second + time.Duration(local.Nanosecond())
	if !s.containsOffset(offset) {
		return Decision{Action: Continue}
	}
	if policy == push.QuietDrop {
		return Decision{Action: Drop}
	}
	release := int(s.DelayUntil)
	until := time.Date(y, mo, d, release/60, release%60, 0, 0, loc)
	if !until.After(now) {
		// time.Date normalises day 32 into the next month, so this also
		// crosses month and year ends.
		until = time.Date(y, mo, d+1, release/60, release%60, 0, 0, loc)
	}
	return Decision{Action: Delay, Until: until}
}

// Rule is the quiet-hours stage with live settings. It is safe for
// concurrent use; Set replaces the settings for every later call.
type Rule struct {
	cfg       atomic.Pointer[Settings]
	now       func() time.Time
	log       *slog.Logger
	decisions *prometheus.CounterVec
}

// Option configures a Rule.
type Option func(*Rule)

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option {
	return func(r *Rule) {
		if now != nil {
			r.now = now
		}
	}
}

// New returns a Rule with settings s. A nil logger discards; a nil
// registerer registers nowhere.
func New(s Settings, logger *slog.Logger, reg prometheus.Registerer, opts ...Option) (*Rule, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Rule{now: time.Now, log: logger}
	for _, o := range opts {
		o(r)
	}
	c, err := metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "waypost", Subsystem: "push_quiet", Name: "decisions_total",
		Help: "Quiet-hours decisions by action: continue, drop, delay."}, []string{"action"}))
	if err != nil {
		return nil, fmt.Errorf("quiet: register metrics: %w", err)
	}
	r.decisions = c
	r.cfg.Store(&s)
	return r, nil
}

// Set validates s and makes it the rule's settings.
func (r *Rule) Set(s Settings) error {
	if err := s.Validate(); err != nil {
		return err
	}
	old := r.cfg.Swap(&s)
	if *old != s {
		r.log.Info("quiet-hours settings changed", slog.String("window", s.Start.String()+"–"+s.End.String()),
			slog.String("delayUntil", s.DelayUntil.String()))
	}
	return nil
}

// Settings returns the settings in force.
func (r *Rule) Settings() Settings { return *r.cfg.Load() }

// Decide decides for a message due at now; see the package function Decide.
func (r *Rule) Decide(now time.Time, loc *time.Location, policy push.Quiet) Decision {
	d := Decide(*r.cfg.Load(), now, loc, policy)
	r.decisions.WithLabelValues(d.Action.String()).Inc()
	return d
}

// DecideNow decides for a message due now by the rule's clock.
func (r *Rule) DecideNow(loc *time.Location, policy push.Quiet) Decision {
	return r.Decide(r.now(), loc, policy)
}
