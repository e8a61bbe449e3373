package handler_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/egress"
	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/channel"
	"github.com/waypost/waypost/internal/push/handler"
	"github.com/waypost/waypost/internal/push/store"
)

type fakeAccounts struct {
	mu    sync.Mutex
	accs  map[string]store.Account
	loads int
	err   error
}

func (f *fakeAccounts) AccountForSending(_ context.Context, id string) (store.Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loads++
	if f.err != nil {
		return store.Account{}, f.err
	}
	a, ok := f.accs[id]
	if !ok {
		return store.Account{}, push.ErrUnknownAccount
	}
	return a, nil
}

func (f *fakeAccounts) set(a store.Account) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.accs[a.ID] = a
}

// namedSender remembers the config it was built from.
type namedSender struct{ name string }

func (namedSender) Send(context.Context, channel.Message) (channel.Result, error) {
	return channel.Result{}, nil
}

func TestSendersCacheAndRebuildOnEdit(t *testing.T) {
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	accs := &fakeAccounts{accs: map[string]store.Account{}}
	accs.set(store.Account{ID: "a1", Channel: push.ChannelEmail, Config: map[string]any{"name": "v1"}, UpdatedAt: now})
	builds := 0
	s := handler.NewSenders(accs, map[push.Channel]handler.Factory{
		push.ChannelEmail: func(_ context.Context, cfg map[string]any) (channel.Sender, error) {
			builds++
			return namedSender{name: cfg["name"].(string)}, nil
		},
	}, handler.WithSendersClock(clock), handler.WithAccountCacheTTL(time.Minute))
	ctx := context.Background()
	tk := push.Task{Channel: push.ChannelEmail, AccountID: "a1"}

	snd, err := s.Resolve(ctx, tk)
	require.NoError(t, err)
	require.Equal(t, "v1", snd.(namedSender).name)
	_, err = s.Resolve(ctx, tk)
	require.NoError(t, err)
	require.Equal(t, 1, builds)
	require.Equal(t, 1, accs.loads, "the account is cached within its TTL")

	accs.set(store.Account{ID: "a1", Channel: push.ChannelEmail, Config: map[string]any{"name": "v2"}, UpdatedAt: now.Add(time.Second)})
	now = now.Add(2 * time.Minute)
	snd, err = s.Resolve(ctx, tk)
	require.NoError(t, err)
	require.Equal(t, "v2", snd.(namedSender).name, "an edited account gets a new sender")
	require.Equal(t, 2, builds)

	now = now.Add(2 * time.Minute)
	_, err = s.Resolve(ctx, tk)
	require.NoError(t, err)
	require.Equal(t, 2, builds, "an unchanged account keeps its sender")
}

func TestSendersErrors(t *testing.T) {
	accs := &fakeAccounts{accs: map[string]store.Account{
		"sms1": {ID: "sms1", Channel: push.ChannelSMS},
		"bad":  {ID: "bad", Channel: push.ChannelWebhook, Config: map[string]any{"url": "ftp://x"}},
	}}
	s := handler.NewSenders(accs, handler.DefaultFactories(egress.New(nil)))
	cases := []struct {
		name      string
		task      push.Task
		permanent bool
		reason    string
	}{
		{"no factory", push.Task{Channel: push.ChannelSMS, AccountID: "sms1"}, true, "channel_not_supported"},
		{"no account id", push.Task{Channel: push.ChannelEmail}, true, "account_required"},
		{"unknown account", push.Task{Channel: push.ChannelEmail, AccountID: "nope"}, true, "account_not_found"},
		{"account of another channel", push.Task{Channel: push.ChannelEmail, AccountID: "bad"}, true, "account_channel_mismatch"},
		{"invalid config", push.Task{Channel: push.ChannelWebhook, AccountID: "bad"}, true, "account_invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Resolve(context.Background(), tc.task)
			require.Error(t, err)
			require.Equal(t, tc.permanent, channel.IsPermanent(err))
			require.Equal(t, tc.reason, handler.Reason(err))
		})
	}

	t.Run("store down is transient", func(t *testing.T) {
		down := &fakeAccounts{err: errors.New("connection refused")}
		s := handler.NewSenders(down, handler.DefaultFactories(nil))
		_, err := s.Resolve(context.Background(), push.Task{Channel: push.ChannelEmail, AccountID: "a"})
		require.Error(t, err)
		require.False(t, channel.IsPermanent(err))
	})
}

func TestSendersBuildDefaultChannels(t *testing.T) {
	accs := &fakeAccounts{accs: map[string]store.Account{
		"mail": {ID: "mail", Channel: push.ChannelEmail, Config: map[string]any{
			"host": "smtp.example.com", "port": 587, "from": "noreply@example.com", "username": "u", "password": "p"}},
		"hook": {ID: "hook", Channel: push.ChannelWebhook, Config: map[string]any{"url": "https://hooks.example.com/x", "secret": "s"}},
	}}
	s := handler.NewSenders(accs, handler.DefaultFactories(egress.New(nil)))
	for _, tk := range []push.Task{
		{Channel: push.ChannelEmail, AccountID: "mail"},
		{Channel: push.ChannelWebhook, AccountID: "hook"},
	} {
		snd, err := s.Resolve(context.Background(), tk)
		require.NoError(t, err, tk.Channel)
		require.NotNil(t, snd)
	}
}

func TestSendersWithoutAccount(t *testing.T) {
	s := handler.NewSenders(nil, nil)
	builds := 0
	s.RegisterNoAccount(push.ChannelInbox, func(_ context.Context, cfg map[string]any) (channel.Sender, error) {
		builds++
		require.Nil(t, cfg)
		return namedSender{name: "inbox"}, nil
	})
	for range 3 {
		snd, err := s.Resolve(context.Background(), push.Task{Channel: push.ChannelInbox})
		require.NoError(t, err)
		require.Equal(t, "inbox", snd.(namedSender).name)
	}
	require.Equal(t, 1, builds)
}
