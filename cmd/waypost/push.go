package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/waypost/waypost/internal/platform/auth"
	"github.com/waypost/waypost/internal/platform/egress"
	"github.com/waypost/waypost/internal/platform/httpx"
	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/access"
	"github.com/waypost/waypost/internal/push/admin"
	"github.com/waypost/waypost/internal/push/channel/inbox"
	"github.com/waypost/waypost/internal/push/handler"
	"github.com/waypost/waypost/internal/push/limit"
	"github.com/waypost/waypost/internal/push/limit/redislimit"
	"github.com/waypost/waypost/internal/push/rules"
	pushstore "github.com/waypost/waypost/internal/push/store"
	"github.com/waypost/waypost/internal/push/trace"
)

// openPushStore opens the push store, which also holds the API keys every
// HTTP API authenticates against, and makes sure a key exists.
func openPushStore(ctx context.Context, w *wiring) error {
	mk, err := masterKey(w.cfg.Push.MasterKey, w.cfg.Data)
	if err != nil {
		return err
	}
	st, err := pushstore.New(w.eng.sql, mk, w.logger.With("component", "push-store"))
	if err != nil {
		return fmt.Errorf("push store: %w", err)
	}
	w.pushStore = st
	w.authn = auth.NewCache(st, auth.MaxCacheTTL, nil)

	if key := w.cfg.BootstrapAPIKey; key != "" {
		if _, err := st.EnsureKey(ctx, key, auth.AllScopes()); err != nil {
			return fmt.Errorf("bootstrap_api_key: %w", err)
		}
		return nil
	}
	has, err := st.HasKeys(ctx)
	if err != nil || has {
		return err
	}
	if err := st.EnsureApp(ctx, pushstore.DefaultAppID, "Default app"); err != nil {
		return err
	}
	_, plain, err := st.CreateKey(ctx, pushstore.DefaultAppID, "bootstrap", auth.AllScopes())
	if err != nil {
		return fmt.Errorf("create first API key: %w", err)
	}
	w.banner = append(w.banner, "API key  "+plain+"  (every scope; shown once — keep it)")
	return nil
}

// seedDemo gives a fresh `up` something to send at once: an approved in-app
// inbox template, created only on a database that has no template yet.
func seedDemo(ctx context.Context, w *wiring) error {
	existing, err := w.pushStore.ListTemplates(ctx, pushstore.TemplateFilter{}, pushstore.Page{Limit: 1})
	if err != nil || len(existing) > 0 {
		return err
	}
	t, err := w.pushStore.CreateTemplate(ctx, push.Template{
		Name: "Welcome (demo)", Channel: push.ChannelInbox, MsgType: push.MsgNotice, Kind: push.KindRealtime,
		Quiet: push.QuietNone, TimeZone: "UTC",
		Content: push.Content{Text: "Hello {{.name}}, welcome to Waypost."},
	}, "seed")
	if err != nil {
		return fmt.Errorf("seed demo template: %w", err)
	}
	for _, a := range []pushstore.Action{pushstore.ActionSubmit, pushstore.ActionApprove} {
		if t, err = w.pushStore.Transition(ctx, t.ID, 0, a, "seed", ""); err != nil {
			return fmt.Errorf("seed demo template: %s: %w", a, err)
		}
	}
	w.banner = append(w.banner, fmt.Sprintf("demo     inbox template %d is approved: waypost send --template %d --to alice --var name=Alice", t.ID, t.ID))
	return nil
}

// masterKey derives the account-secret key from the configured passphrase,
// or from one kept in <data>/master.key, created on first use.
func masterKey(passphrase, data string) ([]byte, error) {
	if passphrase == "" {
		path := filepath.Join(data, "master.key")
		b, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			var raw [32]byte
			if _, err := rand.Read(raw[:]); err != nil {
				return nil, err
			}
			b = []byte(hex.EncodeToString(raw[:]))
			if err := os.WriteFile(path, b, 0o600); err != nil {
				return nil, fmt.Errorf("write master key: %w", err)
			}
		case err != nil:
			return nil, fmt.Errorf("read master key: %w", err)
		}
		passphrase = strings.TrimSpace(string(b))
	}
	return pushstore.DeriveMasterKey(passphrase)
}

// addPush runs the push roles: api (send, inbox), admin (templates,
// accounts, keys), trace (anchor consumer and queries), handler (rule
// stages and sends), and registers the push rules' live settings.
func addPush(w *wiring, roles []string) error {
	// Every push process knows the rules' settings, so that the settings
	// API of any instance (an admin-only one, say) validates and serves them.
	pc := w.cfg.Push
	settings := rules.Register(w.settings, rules.Defaults{
		Pool: rules.Pool{Workers: pc.Workers, Queue: pc.Queue},
		Retry: rules.RetryPolicy{MaxAttempts: pc.MaxAttempts, Backoff: rules.Duration(pc.RetryBackoff),
			MaxBackoff: rules.Duration(pc.MaxRetryBackoff)},
	})
	if slices.Contains(roles, "admin") {
		admin.New(w.pushStore, w.logger.With("component", "push-admin")).Register(w.mux, w.authn)
	}
	if slices.Contains(roles, "trace") {
		if err := addTrace(w); err != nil {
			return err
		}
	}
	if slices.Contains(roles, "handler") {
		if err := addHandler(w, settings); err != nil {
			return err
		}
	}
	if !slices.Contains(roles, "api") {
		return nil
	}
	if err := addInboxAPI(w); err != nil {
		return err
	}
	h, err := access.New(access.Config{MaxMessages: w.cfg.Push.MaxMessages}, w.pushStore, w.eng.queue, w.eng.kv,
		w.logger.With("component", "push-access"), w.reg,
		access.WithAppID(func(ctx context.Context) string { p, _ := auth.FromContext(ctx); return p.AppID }))
	if err != nil {
		return fmt.Errorf("push access: %w", err)
	}
	w.closers = append(w.closers, func() error { h.Close(); return nil })
	h.Register(w.mux, auth.Require(w.authn, auth.ScopeSend))
	return nil
}

// inboxHub returns the process's one inbox hub, which fans new in-app
// messages out to live streams (and polls the store for other instances').
func inboxHub(w *wiring) (*inbox.Hub, error) {
	if w.inbox != nil {
		return w.inbox, nil
	}
	hub, err := inbox.NewHub(w.inboxStore(), inbox.HubConfig{}, w.logger.With("component", "inbox"), w.reg)
	if err != nil {
		return nil, fmt.Errorf("inbox: %w", err)
	}
	w.inbox = hub
	w.group.Add("inbox-hub", func() error { return hub.Run(context.Background()) }, func(context.Context) error {
		hub.Close()
		return nil
	})
	w.endStreams = append(w.endStreams, hub.Close)
	return hub, nil
}

// addHandler consumes every channel × message-type topic, each with its own
// worker pool, takes each task through the rule stages on the live settings,
// and sends through the channels' providers.
func addHandler(w *wiring, settings *rules.Settings) error {
	allow, err := egress.ParseAllow(strings.Join(w.cfg.Push.EgressAllow, ","))
	if err != nil {
		return fmt.Errorf("push.egress_allow: %w", err)
	}
	hub, err := inboxHub(w)
	if err != nil {
		return err
	}
	senders := handler.NewSenders(w.pushStore, handler.DefaultFactories(egress.New(allow)))
	senders.RegisterNoAccount(push.ChannelInbox, inbox.Factory(w.inboxStore(), hub))
	limiter, err := pushLimiter(w)
	if err != nil {
		return err
	}
	h, err := handler.New(handler.Config{}, w.eng.queue, w.eng.kv, senders, w.logger.With("component", "push-handler"), w.reg,
		handler.WithRules(settings), handler.WithLimiter(limiter))
	if err != nil {
		return fmt.Errorf("push handler: %w", err)
	}
	// Run gets a context that is never cancelled: the group's stop drains it.
	w.group.Add("push-handler", func() error { return h.Run(context.Background()) }, h.Close)
	return nil
}

// pushLimiter is the rate limiter of push.limits: cluster-wide in the kv
// engine's Redis (same server and key prefix) when there is one, falling
// back to an in-process limiter while Redis fails; in-process otherwise.
func pushLimiter(w *wiring) (limit.Limiter, error) {
	logger := w.logger.With("component", "push-limit")
	local, err := limit.NewLocal(logger, w.reg)
	if err != nil {
		return nil, fmt.Errorf("push rate limiter: %w", err)
	}
	if w.eng.redis == nil {
		return local, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := redislimit.Open(ctx, w.eng.redis, redislimit.Config{Prefix: w.eng.redisPrefix, Fallback: local}, logger, w.reg)
	if err != nil {
		return nil, fmt.Errorf("push rate limiter: %w", err)
	}
	w.closers = append(w.closers, l.Close)
	return l, nil
}

// addInboxAPI serves the in-app inbox: list, mark read, live stream.
func addInboxAPI(w *wiring) error {
	hub, err := inboxHub(w)
	if err != nil {
		return err
	}
	inbox.NewAPI(w.inboxStore(), hub, inbox.APIConfig{}, w.logger.With("component", "inbox")).
		Register(w.mux, auth.Require(w.authn, auth.ScopeSend))
	return nil
}

// addTrace runs the trace role: the aggregator of realtime views on the kv
// store and the writer of the SQL detail store (each its own consumer
// group), the detail store's pruner, and the trace queries and receipts.
func addTrace(w *wiring) error {
	tc := w.cfg.Trace
	loc, err := time.LoadLocation(tc.TimeZone)
	if err != nil {
		return fmt.Errorf("trace.timezone: %w", err)
	}
	logger := w.logger.With("component", "trace")
	views := trace.NewViews(w.eng.kv, trace.ViewConfig{
		Location: loc, MessageTTL: tc.MessageTTL, MessageMaxEvents: tc.MessageMaxEvents,
		ReceiverMaxEvents: tc.ReceiverMaxEvents, CountsTTL: tc.CountsTTL, EventIDTTL: tc.EventIDTTL,
	})
	store := trace.NewSQLStore(w.eng.sql)
	for group, sink := range map[string]trace.Sink{trace.ViewsGroup: views, trace.DetailGroup: trace.DetailSink(store)} {
		c, err := trace.NewConsumer(w.eng.queue, sink, trace.ConsumerConfig{
			Group: group, BatchSize: tc.BatchSize, FlushEvery: tc.FlushInterval,
		}, logger, w.reg)
		if err != nil {
			return fmt.Errorf("trace: %w", err)
		}
		w.group.Add(group, func() error { return c.Run(context.Background()) }, func(context.Context) error {
			c.Close()
			return nil
		})
	}
	pruner := trace.NewPruner(store, tc.Retention, tc.PruneInterval, nil, logger)
	w.group.Add("trace-pruner", func() error { return pruner.Run(context.Background()) }, func(context.Context) error {
		pruner.Close()
		return nil
	})
	reader := trace.NewReader(views, store, tc.QueryLimit, logger)
	trace.NewAPI(reader, trace.NewRecorder(w.eng.queue, reader, nil), trace.APIConfig{Location: loc}, logger).
		Register(w.mux, auth.Require(w.authn, auth.ScopeTrace), auth.Require(w.authn, auth.ScopeSend))
	return nil
}

// guarded registers a component's routes on the mux, each behind a key
// with scope.
func guarded(w *wiring, scope string, register func(r httpx.Router)) {
	register(httpx.Wrap(w.mux, auth.Require(w.authn, scope)))
}
