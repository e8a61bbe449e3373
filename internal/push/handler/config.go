package handler

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/rules"
)

// errConfig is wrapped by every configuration error.
var errConfig = errors.New("invalid handler config")

// Defaults of Config.
const (
	DefaultWorkers             = 8
	DefaultQueue               = 256
	DefaultSendingTTL          = 10 * time.Minute
	DefaultSentTTL             = 72 * time.Hour
	DefaultAckTimeout          = 2 * time.Minute
	DefaultMaxAttempts         = 5
	DefaultRetryBackoff        = time.Second
	DefaultMaxRetryBackoff     = time.Minute
	DefaultRejectDelay         = time.Second
	DefaultAnchorBuffer        = 8192
	DefaultAnchorBatch         = 256
	DefaultAnchorFlushInterval = 100 * time.Millisecond
	DefaultDrainTimeout        = 20 * time.Second
	DefaultAccountCacheTTL     = 30 * time.Second
)

// PoolSize bounds one channel × type's pool.
type PoolSize struct {
	// Workers is how many tasks run at once.
	Workers int `yaml:"workers"`
	// Queue is how many more may wait for a worker.
	Queue int `yaml:"queue"`
	// InFlight is the subscription's MaxInFlight, between Workers and
	// Workers+Queue; 0 means Workers+Queue.
	InFlight int `yaml:"in_flight"`
}

// inFlight is the MaxInFlight of a subscription feeding a pool of size s.
func (s PoolSize) inFlight() int {
	if s.InFlight > 0 {
		return s.InFlight
	}
	return s.Workers + s.Queue
}

func (s PoolSize) validate(name string) error {
	if s.Workers < 1 || s.Queue < 0 {
		return fmt.Errorf("pool %s: workers %d must be positive and queue %d not negative: %w", name, s.Workers, s.Queue, errConfig)
	}
	if s.InFlight != 0 && (s.InFlight < s.Workers || s.InFlight > s.Workers+s.Queue) {
		return fmt.Errorf("pool %s: in-flight %d not in workers..workers+queue (%d..%d): %w",
			name, s.InFlight, s.Workers, s.Workers+s.Queue, errConfig)
	}
	return nil
}

// poolSize converts a pool of the live settings.
func poolSize(p rules.Pool) PoolSize {
	return PoolSize{Workers: p.Workers, Queue: p.Queue, InFlight: p.InFlight}
}

// Config tunes the handler; zero fields take the defaults above.
type Config struct {
	// Channels and MsgTypes select the topics consumed; empty means all.
	Channels []push.Channel `yaml:"channels"`
	MsgTypes []push.MsgType `yaml:"msg_types"`
	// Pool is the default size of every pool; Pools overrides it per
	// "channel.type", e.g. "email.marketing". With WithRules the live
	// setting push.pools sizes the pools instead.
	Pool  PoolSize            `yaml:"pool"`
	Pools map[string]PoolSize `yaml:"pools"`
	// SendingTTL is how long a receiver's "sending" ledger mark lives: a
	// crashed attempt blocks retries of that receiver for at most this long.
	SendingTTL time.Duration `yaml:"sending_ttl"`
	// SentTTL is how long "sent" and "failed" marks (and a message's count
	// of failed deliveries) are kept, which bounds how late a redelivery is
	// still recognised.
	SentTTL time.Duration `yaml:"sent_ttl"`
	// AckTimeout is the subscription's: an unsettled task is redelivered
	// after it. A rate-limit wait is capped at half of it.
	AckTimeout time.Duration `yaml:"ack_timeout"`
	// MaxAttempts is how many deliveries of a task may end in a transient
	// failure before the receivers still failing are given up with
	// retries_exhausted; ChannelMaxAttempts overrides it per channel.
	// With WithRules the live setting push.retry applies instead.
	MaxAttempts        int                  `yaml:"max_attempts"`
	ChannelMaxAttempts map[push.Channel]int `yaml:"channel_max_attempts"`
	// RetryBackoff is the Nack delay after the first failed delivery; it
	// doubles per failure up to MaxRetryBackoff, jittered (rules.RetryPolicy.Delay).
	RetryBackoff    time.Duration `yaml:"retry_backoff"`
	MaxRetryBackoff time.Duration `yaml:"max_retry_backoff"`
	// RejectDelay is the Nack delay of a delivery refused by a full pool.
	RejectDelay time.Duration `yaml:"reject_delay"`
	// AnchorBuffer bounds anchors waiting to be published; beyond it they
	// are dropped and counted. AnchorBatch and AnchorFlushInterval shape
	// the batches.
	AnchorBuffer        int           `yaml:"anchor_buffer"`
	AnchorBatch         int           `yaml:"anchor_batch"`
	AnchorFlushInterval time.Duration `yaml:"anchor_flush_interval"`
	// DrainTimeout bounds the drain Run does itself when its ctx ends, and
	// the drain of subscriptions replaced by Resize.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// Now is the clock of anchors and of the rules (expiry, quiet hours,
	// dedup windows); nil means time.Now.
	Now func() time.Time `yaml:"-"`
	// LoadLocation loads a template's time zone; nil means
	// time.LoadLocation. Each zone is loaded once and cached.
	LoadLocation func(name string) (*time.Location, error) `yaml:"-"`
	// Jitter draws the random part of each retry delay, in [0, 1); nil
	// means math/rand/v2's Float64.
	Jitter func() float64 `yaml:"-"`
}

func (c Config) withDefaults() (Config, error) {
	if len(c.Channels) == 0 {
		c.Channels = push.Channels()
	}
	if len(c.MsgTypes) == 0 {
		c.MsgTypes = push.MsgTypes()
	}
	if c.Pool.Workers == 0 {
		c.Pool.Workers = DefaultWorkers
	}
	if c.Pool.Queue == 0 {
		c.Pool.Queue = DefaultQueue
	}
	durations := []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&c.SendingTTL, DefaultSendingTTL}, {&c.SentTTL, DefaultSentTTL}, {&c.AckTimeout, DefaultAckTimeout},
		{&c.RetryBackoff, DefaultRetryBackoff}, {&c.MaxRetryBackoff, DefaultMaxRetryBackoff},
		{&c.RejectDelay, DefaultRejectDelay}, {&c.AnchorFlushInterval, DefaultAnchorFlushInterval},
		{&c.DrainTimeout, DefaultDrainTimeout},
	}
	for _, d := range durations {
		if *d.v < 0 {
			return c, fmt.Errorf("negative duration %s: %w", *d.v, errConfig)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	ints := []struct {
		v   *int
		def int
	}{{&c.MaxAttempts, DefaultMaxAttempts}, {&c.AnchorBuffer, DefaultAnchorBuffer}, {&c.AnchorBatch, DefaultAnchorBatch}}
	for _, n := range ints {
		if *n.v < 0 {
			return c, fmt.Errorf("negative count %d: %w", *n.v, errConfig)
		}
		if *n.v == 0 {
			*n.v = n.def
		}
	}
	if err := c.Pool.validate("default"); err != nil {
		return c, err
	}
	for name, s := range c.Pools {
		if err := s.validate(name); err != nil {
			return c, err
		}
	}
	for ch, n := range c.ChannelMaxAttempts {
		if n < 1 {
			return c, fmt.Errorf("max attempts %d of %s must be positive: %w", n, ch, errConfig)
		}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.LoadLocation == nil {
		c.LoadLocation = time.LoadLocation
	}
	if c.Jitter == nil {
		c.Jitter = rand.Float64
	}
	return c, nil
}

func (c Config) poolSize(name string) PoolSize {
	if s, ok := c.Pools[name]; ok {
		return s
	}
	return c.Pool
}

func (c Config) maxAttempts(ch push.Channel) int {
	if n, ok := c.ChannelMaxAttempts[ch]; ok {
		return n
	}
	return c.MaxAttempts
}

// retryPolicy is the static retry policy of ch, used when the handler runs
// without live settings.
func (c Config) retryPolicy(ch push.Channel) rules.RetryPolicy {
	return rules.RetryPolicy{MaxAttempts: c.maxAttempts(ch), Backoff: rules.Duration(c.RetryBackoff),
		MaxBackoff: rules.Duration(c.MaxRetryBackoff)}
}
