package limit

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/waypost/waypost/internal/platform/dynconf"
)

// ErrInvalidSettings is wrapped by every settings error; the message names
// the field.
var ErrInvalidSettings = errors.New("invalid rate-limit settings")

// Defaults and bounds of a Limit.
const (
	DefaultPer     = time.Second
	DefaultBurst   = 1
	DefaultMaxWait = 10 * time.Second
	MaxRate        = 1_000_000
	MaxBurst       = 1_000_000
	MaxPer         = 24 * time.Hour
	MaxMaxWait     = 10 * time.Minute
)

// Mode says what one unit of a limit is.
type Mode string

// Modes: a task (one provider request) or one receiver of a task.
const (
	ModeRequests  Mode = "requests"
	ModeReceivers Mode = "receivers"
)

// Duration is a time.Duration written as a Go duration string ("1m", "500ms") in JSON.
type Duration time.Duration

// D returns the duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string such as \"1m\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Limit is one account's limit: Rate units per Per, where a unit is a task
// (ModeRequests) or a receiver (ModeReceivers). A chat robot allowing 20
// messages a minute is {"mode":"requests","rate":20,"per":"1m"}.
//
// Burst is how many units may go back to back after a quiet spell. The
// default, 1, spaces units evenly, so no window of length Per ever sees more
// than Rate; a larger burst lets a receivers-mode task take several units in
// one step, at the price of up to Burst-1 extra in one window. MaxWait bounds
// how long one call waits. Rate 0 means no limit. Zero fields take the
// defaults (WithDefaults).
type Limit struct {
	Mode    Mode     `json:"mode"`
	Rate    int      `json:"rate"`
	Per     Duration `json:"per,omitzero"`
	Burst   int      `json:"burst,omitzero"`
	MaxWait Duration `json:"maxWait,omitzero"`
}

// WithDefaults fills the zero fields: mode requests, per 1s, burst 1,
// maxWait 10s.
func (l Limit) WithDefaults() Limit {
	if l.Mode == "" {
		l.Mode = ModeRequests
	}
	if l.Per == 0 {
		l.Per = Duration(DefaultPer)
	}
	if l.Burst == 0 {
		l.Burst = DefaultBurst
	}
	if l.MaxWait == 0 {
		l.MaxWait = Duration(DefaultMaxWait)
	}
	return l
}

// Unlimited reports a limit that never waits.
func (l Limit) Unlimited() bool { return l.Rate <= 0 }

// Cost is what a task of receivers costs under the limit's mode.
func (l Limit) Cost(receivers int) int {
	if l.Mode == ModeReceivers {
		return receivers
	}
	return 1
}

// PerSecond is the limit's rate in units per second.
func (l Limit) PerSecond() float64 {
	l = l.WithDefaults()
	return float64(l.Rate) / l.Per.D().Seconds()
}

// Validate reports every problem, each naming its field.
func (l Limit) Validate() error { return l.validate("") }

func (l Limit) validate(prefix string) error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("rate limit: %s%s: %s: %w", prefix, field, fmt.Sprintf(format, args...), ErrInvalidSettings))
	}
	if l.Mode != "" && l.Mode != ModeRequests && l.Mode != ModeReceivers {
		bad("mode", "%q is not %q or %q", l.Mode, ModeRequests, ModeReceivers)
	}
	if l.Rate < 0 || l.Rate > MaxRate {
		bad("rate", "%d not in 0..%d (0: no limit)", l.Rate, MaxRate)
	}
	if l.Per < 0 || l.Per.D() > MaxPer {
		bad("per", "%v not in (0, %v]", l.Per.D(), MaxPer)
	}
	if l.Burst < 0 || l.Burst > MaxBurst {
		bad("burst", "%d not in 1..%d", l.Burst, MaxBurst)
	}
	if l.MaxWait < 0 || l.MaxWait.D() > MaxMaxWait {
		bad("maxWait", "%v not in (0, %v]", l.MaxWait.D(), MaxMaxWait)
	}
	return errors.Join(errs...)
}

// Settings are the limits of every channel account: Accounts by account id,
// and Default for the accounts not listed (its zero value: no limit).
//
//	{"default": {"mode": "requests", "rate": 100},
//	 "accounts": {"dingtalk-ops": {"mode": "requests", "rate": 20, "per": "1m"}}}
type Settings struct {
	Default  Limit            `json:"default"`
	Accounts map[string]Limit `json:"accounts,omitempty"`
}

// For returns the limit of account, with defaults filled.
func (s Settings) For(account string) Limit {
	if l, ok := s.Accounts[account]; ok {
		return l.WithDefaults()
	}
	return s.Default.WithDefaults()
}

// Validate reports every problem, each naming its field.
func (s Settings) Validate() error {
	errs := []error{s.Default.validate("default.")}
	ids := make([]string, 0, len(s.Accounts))
	for id := range s.Accounts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if id == "" {
			errs = append(errs, fmt.Errorf("rate limit: accounts: empty account id: %w", ErrInvalidSettings))
			continue
		}
		errs = append(errs, s.Accounts[id].validate("accounts."+id+"."))
	}
	return errors.Join(errs...)
}

// ParseSettings decodes and validates settings JSON; unknown keys are an error.
func ParseSettings(data []byte) (Settings, error) {
	var s Settings
	if err := dynconf.DecodeStrict(data, &s); err != nil {
		return Settings{}, fmt.Errorf("rate limit settings: %w: %w", err, ErrInvalidSettings)
	}
	if err := s.Validate(); err != nil {
		return Settings{}, err
	}
	return s, nil
}
