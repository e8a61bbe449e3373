package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/waypost/waypost/internal/platform/egress"
	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/channel"
	"github.com/waypost/waypost/internal/push/channel/email"
	"github.com/waypost/waypost/internal/push/channel/webhook"
	"github.com/waypost/waypost/internal/push/store"
)

// Errors of sender resolution; Reason turns each into its send_failed detail.
var (
	// ErrChannelNotSupported: no factory is registered for the task's channel.
	ErrChannelNotSupported = errors.New("channel not supported")
	// ErrAccountRequired: the channel needs an account and the task has none.
	ErrAccountRequired = errors.New("channel account required")
	// ErrAccountMismatch: the task's account belongs to another channel.
	ErrAccountMismatch = errors.New("channel account of another channel")
	// ErrAccountInvalid: the factory refused the account's config.
	ErrAccountInvalid = errors.New("channel account config invalid")
)

// reasons maps resolution errors to the stable details of send_failed anchors.
var reasons = []struct {
	err    error
	reason string
}{
	{ErrChannelNotSupported, "channel_not_supported"},
	{ErrAccountRequired, "account_required"},
	{push.ErrUnknownAccount, "account_not_found"},
	{ErrAccountMismatch, "account_channel_mismatch"},
	{ErrAccountInvalid, "account_invalid"},
}

// maxReason bounds a provider's error text carried in an anchor.
const maxReason = 300

// Reason is the send_failed detail for err: a stable code for the handler's
// own errors, the (shortened) provider error otherwise.
func Reason(err error) string {
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	s := err.Error()
	if len(s) > maxReason {
		s = s[:maxReason]
	}
	return s
}

// SenderResolver finds the sender for a task. An error marked
// channel.Permanent fails every receiver; any other is retried.
type SenderResolver interface {
	Resolve(ctx context.Context, task push.Task) (channel.Sender, error)
}

// Factory builds a sender from a channel account's decrypted config; the
// config is nil for a channel registered without accounts.
type Factory func(ctx context.Context, accountConfig map[string]any) (channel.Sender, error)

// AccountLoader loads a channel account with its secrets decrypted;
// *store.Store implements it.
type AccountLoader interface {
	AccountForSending(ctx context.Context, id string) (store.Account, error)
}

// Senders is the default SenderResolver: a registry of factories per
// channel, and a cache of built senders per account version.
type Senders struct {
	accounts AccountLoader
	ttl      time.Duration
	now      func() time.Time

	mu        sync.Mutex
	factories map[push.Channel]factoryEntry
	loaded    map[string]loadedAccount // account id → last load
	built     map[senderKey]channel.Sender
	flight    singleflight.Group
}

type factoryEntry struct {
	f         Factory
	noAccount bool
}

type loadedAccount struct {
	acc store.Account
	at  time.Time
}

type senderKey struct {
	channel   push.Channel
	account   string
	updatedAt int64
}

// SendersOption tunes Senders.
type SendersOption func(*Senders)

// WithAccountCacheTTL sets how long a loaded account is trusted before it is
// read again to see an edit; default DefaultAccountCacheTTL.
func WithAccountCacheTTL(d time.Duration) SendersOption {
	return func(s *Senders) {
		if d > 0 {
			s.ttl = d
		}
	}
}

// WithSendersClock sets the clock of the account cache.
func WithSendersClock(now func() time.Time) SendersOption {
	return func(s *Senders) {
		if now != nil {
			s.now = now
		}
	}
}

// NewSenders returns a resolver over accounts with factories registered for
// channels that use accounts. accounts may be nil when every channel is
// registered with RegisterNoAccount.
func NewSenders(accounts AccountLoader, factories map[push.Channel]Factory, opts ...SendersOption) *Senders {
	s := &Senders{
		accounts:  accounts,
		ttl:       DefaultAccountCacheTTL,
		now:       time.Now,
		factories: map[push.Channel]factoryEntry{},
		loaded:    map[string]loadedAccount{},
		built:     map[senderKey]channel.Sender{},
	}
	for ch, f := range factories {
		s.factories[ch] = factoryEntry{f: f}
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Register sets the factory of a channel whose tasks carry an account id.
func (s *Senders) Register(ch push.Channel, f Factory) { s.register(ch, factoryEntry{f: f}) }

// RegisterNoAccount sets the factory of a channel without accounts (inbox):
// it is called once with a nil config and the sender is shared by every task.
func (s *Senders) RegisterNoAccount(ch push.Channel, f Factory) {
	s.register(ch, factoryEntry{f: f, noAccount: true})
}

func (s *Senders) register(ch push.Channel, e factoryEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.factories[ch] = e
	for k := range s.built {
		if k.channel == ch {
			delete(s.built, k)
		}
	}
}

// Resolve returns the sender of task's channel and account, building it on
// first use and again after the account was edited.
func (s *Senders) Resolve(ctx context.Context, task push.Task) (channel.Sender, error) {
	s.mu.Lock()
	e, ok := s.factories[task.Channel]
	s.mu.Unlock()
	if !ok {
		return nil, channel.Permanent(fmt.Errorf("resolve sender of %q: %w", task.Channel, ErrChannelNotSupported))
	}
	if e.noAccount {
		return s.build(ctx, senderKey{channel: task.Channel}, e.f, nil)
	}
	if task.AccountID == "" {
		return nil, channel.Permanent(fmt.Errorf("resolve sender of %q: %w", task.Channel, ErrAccountRequired))
	}
	acc, err := s.account(ctx, task.AccountID)
	if err != nil {
		return nil, err
	}
	if acc.Channel != task.Channel {
		return nil, channel.Permanent(fmt.Errorf("account %s is %s, task is %s: %w", acc.ID, acc.Channel, task.Channel, ErrAccountMismatch))
	}
	return s.build(ctx, senderKey{channel: task.Channel, account: acc.ID, updatedAt: acc.UpdatedAt.UnixNano()}, e.f, acc.Config)
}

// account loads id at most once per ttl; concurrent loads share one call.
func (s *Senders) account(ctx context.Context, id string) (store.Account, error) {
	now := s.now()
	s.mu.Lock()
	l, ok := s.loaded[id]
	s.mu.Unlock()
	if ok && now.Sub(l.at) < s.ttl {
		return l.acc, nil
	}
	if s.accounts == nil {
		return store.Account{}, channel.Permanent(fmt.Errorf("account %s: no account loader: %w", id, push.ErrUnknownAccount))
	}
	v, err, _ := s.flight.Do("account:"+id, func() (any, error) {
		return s.accounts.AccountForSending(ctx, id)
	})
	if err != nil {
		if errors.Is(err, push.ErrUnknownAccount) {
			return store.Account{}, channel.Permanent(fmt.Errorf("load account %s: %w", id, err))
		}
		return store.Account{}, fmt.Errorf("load account %s: %w", id, err)
	}
	acc := v.(store.Account)
	s.mu.Lock()
	s.loaded[id] = loadedAccount{acc: acc, at: now}
	s.mu.Unlock()
	return acc, nil
}

// build returns the cached sender of k or builds it, dropping senders of
// older versions of the same account.
func (s *Senders) build(ctx context.Context, k senderKey, f Factory, cfg map[string]any) (channel.Sender, error) {
	s.mu.Lock()
	snd, ok := s.built[k]
	s.mu.Unlock()
	if ok {
		return snd, nil
	}
	v, err, _ := s.flight.Do(fmt.Sprintf("build:%s:%s:%d", k.channel, k.account, k.updatedAt), func() (any, error) {
		return f(ctx, cfg)
	})
	if err != nil {
		if channel.IsPermanent(err) {
			return nil, err
		}
		return nil, channel.Permanent(fmt.Errorf("build %s sender for account %q: %w: %w", k.channel, k.account, ErrAccountInvalid, err))
	}
	snd = v.(channel.Sender)
	s.mu.Lock()
	defer s.mu.Unlock()
	for old := range s.built {
		if old.channel == k.channel && old.account == k.account && old.updatedAt != k.updatedAt {
			delete(s.built, old)
		}
	}
	s.built[k] = snd
	return snd, nil
}

// decodeConfig turns an account's config map into a channel's typed config
// through its JSON names.
func decodeConfig(cfg map[string]any, dst any) error {
	raw, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encode account config: %w", err)
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("decode account config: %w", err)
	}
	return nil
}

// EmailFactory builds SMTP senders dialling through guard.
func EmailFactory(guard *egress.Guard, opts ...email.Option) Factory {
	return func(_ context.Context, cfg map[string]any) (channel.Sender, error) {
		var c email.Config
		if err := decodeConfig(cfg, &c); err != nil {
			return nil, err
		}
		return email.New(c, guard, opts...)
	}
}

// WebhookFactory builds webhook senders sharing one HTTP client whose every
// connection goes through guard; a nil guard refuses every internal address.
func WebhookFactory(guard *egress.Guard, opts ...webhook.Option) Factory {
	client := webhook.NewClient(guard)
	return func(_ context.Context, cfg map[string]any) (channel.Sender, error) {
		var c webhook.Config
		if err := decodeConfig(cfg, &c); err != nil {
			return nil, err
		}
		return webhook.New(c, client, opts...)
	}
}

// DefaultFactories are the factories of the channels built so far.
func DefaultFactories(guard *egress.Guard) map[push.Channel]Factory {
	return map[push.Channel]Factory{
		push.ChannelEmail:   EmailFactory(guard),
		push.ChannelWebhook: WebhookFactory(guard),
	}
}
