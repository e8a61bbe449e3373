// Package rules defines the push handler's live settings: their names, JSON
// shapes, defaults and validation, and registers them in a process's dynconf
// registry so that an operator changes them over the settings API and every
// handler instance applies them within seconds.
//
// Three settings are the rule libraries' own types (dedup, quiet hours, rate
// limits); the others — discard list, whitelist, worker pools, retries and
// message expiry — are defined here. The handler reads them; this package
// holds no machinery, so the settings API, docs and tests can use it without
// a handler.
package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/waypost/waypost/internal/platform/dynconf"
	"github.com/waypost/waypost/internal/push/dedup"
	"github.com/waypost/waypost/internal/push/limit"
	"github.com/waypost/waypost/internal/push/quiet"
)

// ErrInvalidSettings is wrapped by every validation error of the settings
// defined here; the message names the field.
var ErrInvalidSettings = errors.New("invalid push rule settings")

// Names of the settings in the dynconf registry (and the settings API).
const (
	NameDedup     = "push.dedup"
	NameQuiet     = "push.quiet"
	NameDiscard   = "push.discard"
	NameWhitelist = "push.whitelist"
	NameLimits    = "push.limits"
	NamePools     = "push.pools"
	NameRetry     = "push.retry"
	NameTTL       = "push.ttl"
)

// Settings are the handler's live settings, each a registered dynconf
// setting: Get is a lock-free read for the hot path, OnChange a hook for
// what must be rebuilt when a value changes.
type Settings struct {
	Dedup     *dynconf.Setting[dedup.Settings]
	Quiet     *dynconf.Setting[quiet.Settings]
	Discard   *dynconf.Setting[Discard]
	Whitelist *dynconf.Setting[Whitelist]
	Limits    *dynconf.Setting[limit.Settings]
	Pools     *dynconf.Setting[Pools]
	Retry     *dynconf.Setting[Retry]
	TTL       *dynconf.Setting[TTL]
}

// Defaults are the values that apply while no setting is stored. Zero
// fields take the built-in defaults (DefaultPools, DefaultRetry); the
// composition root fills them from the static config, so push.workers,
// push.queue and push.max_attempts keep meaning what they always did.
type Defaults struct {
	Pool  Pool
	Retry RetryPolicy
}

// Register adds every push rule setting to r and returns them. It panics
// when a name is taken (dynconf.Register), a wiring mistake.
func Register(r *dynconf.Registry, d Defaults) *Settings {
	pools := DefaultPools()
	if d.Pool.Workers > 0 {
		pools.Default = d.Pool
	}
	retry := DefaultRetry()
	if d.Retry.MaxAttempts > 0 {
		retry.Default.MaxAttempts = d.Retry.MaxAttempts
	}
	if d.Retry.Backoff > 0 {
		retry.Default.Backoff = d.Retry.Backoff
	}
	if d.Retry.MaxBackoff > 0 {
		retry.Default.MaxBackoff = d.Retry.MaxBackoff
	}
	return &Settings{
		Dedup:     dynconf.Register(r, NameDedup, dedup.DefaultSettings(), dedup.Settings.Validate),
		Quiet:     dynconf.Register(r, NameQuiet, quiet.DefaultSettings(), quiet.Settings.Validate),
		Discard:   dynconf.Register(r, NameDiscard, Discard{Templates: []int64{}}, Discard.Validate),
		Whitelist: dynconf.Register(r, NameWhitelist, Whitelist{Receivers: []string{}}, Whitelist.Validate),
		Limits: dynconf.Register(r, NameLimits, limit.Settings{Default: limit.Limit{Mode: limit.ModeRequests},
			Accounts: map[string]limit.Limit{}}, limit.Settings.Validate),
		Pools: dynconf.Register(r, NamePools, pools, Pools.Validate),
		Retry: dynconf.Register(r, NameRetry, retry, Retry.Validate),
		TTL:   dynconf.Register(r, NameTTL, DefaultTTL(), TTL.Validate),
	}
}

// Duration is a time.Duration written as a Go duration string ("5m",
// "1h30m") in JSON.
type Duration time.Duration

// D returns the duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String renders the duration without zero tails: "24h", "5m", "1m30s".
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string such as \"5m\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// problems collects validation errors, each naming its field after what
// the setting is ("pool settings: pools.sms.notice.workers: …").
type problems struct {
	setting string
	errs    []error
}

func (p *problems) add(field, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: %s: %s: %w", p.setting, field, fmt.Sprintf(format, args...), ErrInvalidSettings))
}

func (p *problems) err() error { return errors.Join(p.errs...) }
