package rules

import (
	"slices"
	"time"

	"github.com/waypost/waypost/internal/push"
)

// Bounds of a retry policy and of a TTL.
const (
	MaxAttempts   = 100
	MaxBackoff    = time.Hour
	MaxMaxBackoff = 24 * time.Hour
	MaxTTL        = 30 * 24 * time.Hour
)

// Built-in retry policy, used when the composition root gives none.
const (
	DefaultMaxAttempts = 5
	DefaultBackoff     = time.Second
	DefaultMaxBackoff  = time.Minute
)

// RetryPolicy says how a task whose sends fail transiently is retried.
type RetryPolicy struct {
	// MaxAttempts is how many deliveries may end in a transient failure;
	// on the last one the receivers still failing get send_failed with
	// retries_exhausted.
	MaxAttempts int `json:"maxAttempts,omitzero"`
	// Backoff is the delay after the first failed delivery; it doubles per
	// failure up to MaxBackoff, and each delay is jittered (see Delay).
	Backoff    Duration `json:"backoff,omitzero"`
	MaxBackoff Duration `json:"maxBackoff,omitzero"`
}

// Delay is the hand-back delay after the failures-th failed delivery:
// Backoff·2^(failures-1), capped at MaxBackoff, of which the upper half is
// jittered by jitter ∈ [0, 1): the delay lies in [d/2, d). Jitter spreads
// the retries of tasks that failed together (a provider outage) so they do
// not come back as one burst; keeping the lower half keeps the backoff.
func (p RetryPolicy) Delay(failures int, jitter float64) time.Duration {
	d, limit := p.Backoff.D(), p.MaxBackoff.D()
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	jitter = min(max(jitter, 0), 1)
	return d/2 + time.Duration(float64(d/2)*jitter)
}

func (p RetryPolicy) validate(pr *problems, field string, required bool) {
	if (required || p.MaxAttempts != 0) && (p.MaxAttempts < 1 || p.MaxAttempts > MaxAttempts) {
		pr.add(field+".maxAttempts", "%d not in 1..%d", p.MaxAttempts, MaxAttempts)
	}
	if (required || p.Backoff != 0) && (p.Backoff <= 0 || p.Backoff.D() > MaxBackoff) {
		pr.add(field+".backoff", "%v not in (0, %v]", p.Backoff, Duration(MaxBackoff))
	}
	if (required || p.MaxBackoff != 0) && (p.MaxBackoff <= 0 || p.MaxBackoff.D() > MaxMaxBackoff) {
		pr.add(field+".maxBackoff", "%v not in (0, %v]", p.MaxBackoff, Duration(MaxMaxBackoff))
	}
}

// Retry is push.retry: the retry policy of every channel, Default for the
// channels not listed. A field left out of a channel's entry (or 0) takes
// the default's.
//
//	{"default": {"maxAttempts": 5, "backoff": "1s", "maxBackoff": "1m"},
//	 "channels": {"sms": {"maxAttempts": 3, "backoff": "5s"}}}
type Retry struct {
	Default  RetryPolicy                  `json:"default"`
	Channels map[push.Channel]RetryPolicy `json:"channels"`
}

// DefaultRetry is 5 attempts, backing off from 1 s to at most 1 min.
func DefaultRetry() Retry {
	return Retry{
		Default: RetryPolicy{MaxAttempts: DefaultMaxAttempts, Backoff: Duration(DefaultBackoff),
			MaxBackoff: Duration(DefaultMaxBackoff)},
		Channels: map[push.Channel]RetryPolicy{},
	}
}

// For returns the policy of ch with the default's values filled in.
func (r Retry) For(ch push.Channel) RetryPolicy {
	p, ok := r.Channels[ch]
	if !ok {
		return r.Default
	}
	if p.MaxAttempts == 0 {
		p.MaxAttempts = r.Default.MaxAttempts
	}
	if p.Backoff == 0 {
		p.Backoff = r.Default.Backoff
	}
	if p.MaxBackoff == 0 {
		p.MaxBackoff = r.Default.MaxBackoff
	}
	return p
}

// Validate reports values out of bounds, unknown channels, and a maximum
// backoff below the first.
func (r Retry) Validate() error {
	pr := problems{setting: "retry settings"}
	r.Default.validate(&pr, "default", true)
	chans := make([]push.Channel, 0, len(r.Channels))
	for ch := range r.Channels {
		chans = append(chans, ch)
	}
	slices.Sort(chans)
	for _, ch := range chans {
		field := "channels." + string(ch)
		if !slices.Contains(push.Channels(), ch) {
			pr.add(field, "unknown channel %q (want one of %v)", ch, push.Channels())
			continue
		}
		r.Channels[ch].validate(&pr, field, false)
	}
	if len(pr.errs) > 0 {
		return pr.err()
	}
	// With every value in bounds, check the combinations a channel inherits.
	if r.Default.MaxBackoff < r.Default.Backoff {
		pr.add("default.maxBackoff", "%v is below backoff %v", r.Default.MaxBackoff, r.Default.Backoff)
	}
	for _, ch := range chans {
		if p := r.For(ch); p.MaxBackoff < p.Backoff {
			pr.add("channels."+string(ch)+".maxBackoff", "%v is below backoff %v", p.MaxBackoff, p.Backoff)
		}
	}
	return pr.err()
}

// TTL is push.ttl: how old a task of each message type may be when the
// handler takes it; an older one is not sent late but recorded send_failed
// with detail "expired". A type left out, or "0s", never expires. The age
// counts from the task's creation; a task delayed by quiet hours counts
// from its release, since that wait was intended.
//
//	{"auth_code": "5m", "notice": "24h", "marketing": "24h"}
type TTL map[push.MsgType]Duration

// DefaultTTL is 5 minutes for verification codes and a day for the others.
func DefaultTTL() TTL {
	return TTL{
		push.MsgAuthCode:  Duration(5 * time.Minute),
		push.MsgNotice:    Duration(24 * time.Hour),
		push.MsgMarketing: Duration(24 * time.Hour),
	}
}

// Validate reports unknown message types and durations out of bounds.
func (t TTL) Validate() error {
	pr := problems{setting: "ttl settings"}
	types := make([]push.MsgType, 0, len(t))
	for mt := range t {
		types = append(types, mt)
	}
	slices.Sort(types)
	for _, mt := range types {
		if !slices.Contains(push.MsgTypes(), mt) {
			pr.add(string(mt), "unknown message type %q (want one of %v)", mt, push.MsgTypes())
			continue
		}
		if d := t[mt]; d < 0 || d.D() > MaxTTL {
			pr.add(string(mt), "%v not in 0..%v (0: never expires)", d, Duration(MaxTTL))
		}
	}
	return pr.err()
}
