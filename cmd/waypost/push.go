package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/waypost/waypost/internal/platform/auth"
	"github.com/waypost/waypost/internal/push/access"
	"github.com/waypost/waypost/internal/push/admin"
	pushstore "github.com/waypost/waypost/internal/push/store"
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

// addPushAPI serves what the api and admin roles own: sending, and the
// management of templates, channel accounts and keys.
func addPushAPI(w *wiring, roles []string) error {
	if slices.Contains(roles, "admin") {
		admin.New(w.pushStore, w.logger.With("component", "push-admin")).Register(w.mux, w.authn)
	}
	if !slices.Contains(roles, "api") {
		return nil
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

// guarded registers what register adds to a mux under prefix, behind a key
// with scope.
func guarded(w *wiring, prefix, scope string, register func(mux *http.ServeMux)) {
	inner := http.NewServeMux()
	register(inner)
	w.mux.Handle(prefix, auth.Require(w.authn, scope)(inner))
}
