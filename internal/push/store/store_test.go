package store_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/waypost/waypost/internal/platform/auth"
	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func masterKey(b byte) []byte {
	return []byte(strings.Repeat(string(rune('a'+b)), store.MasterKeySize))
}

func newStore(t *testing.T, db *sqldb.DB, opts ...store.Option) *store.Store {
	t.Helper()
	st, err := store.New(db, masterKey(0), nil, opts...)
	require.NoError(t, err)
	return st
}

// TestStore runs every store behaviour on each engine, sharing one fresh
// database per engine to keep the suite quick.
func TestStore(t *testing.T) {
	sqltest.EachDialect(t, func(t *testing.T, db *sqldb.DB) {
		t.Run("keys", func(t *testing.T) { testKeys(t, db) })
		t.Run("accounts", func(t *testing.T) { testAccounts(t, db) })
		t.Run("templates", func(t *testing.T) { testTemplates(t, db) })
		t.Run("approve vs edit", func(t *testing.T) { testApproveVersusEdit(t, db) })
	}, sqldb.PlatformMigrations(), store.Migrations())
}

func testKeys(t *testing.T, db *sqldb.DB) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	st := newStore(t, db)

	boot := "wp_bootstrap-key-0123456789abcdef"
	k1, err := st.EnsureKey(ctx, boot, auth.AllScopes())
	require.NoError(t, err)
	k2, err := st.EnsureKey(ctx, boot, auth.AllScopes())
	require.NoError(t, err)
	require.Equal(t, k1.ID, k2.ID, "EnsureKey is idempotent")
	_, err = st.EnsureKey(ctx, "short", auth.AllScopes())
	require.Error(t, err)

	p, err := st.Authenticate(ctx, boot)
	require.NoError(t, err)
	require.Equal(t, store.DefaultAppID, p.AppID)
	require.ElementsMatch(t, auth.AllScopes(), p.Scopes)

	_, _, err = st.CreateKey(ctx, store.DefaultAppID, "bad", []string{"root"})
	require.Error(t, err)
	key, plain, err := st.CreateKey(ctx, store.DefaultAppID, "sender", []string{auth.ScopeSend})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(plain, auth.KeyPrefix))

	var stored string
	require.NoError(t, db.QueryRowContext(ctx, db.Rebind("SELECT key_hash FROM push_api_keys WHERE id = ?"), key.ID).Scan(&stored))
	require.Equal(t, auth.HashKey(plain), stored)
	require.NotContains(t, stored, plain)

	for _, bad := range []string{"", "wp_", "wp_not-a-real-key-but-long-enough", plain + "x"} {
		_, err := st.Authenticate(ctx, bad)
		require.ErrorIs(t, err, auth.ErrUnauthorized, bad)
	}

	cache := auth.NewCache(st, time.Second, func() time.Time { return now })
	p, err = cache.Authenticate(ctx, plain)
	require.NoError(t, err)
	require.Equal(t, key.ID, p.KeyID)
	require.NoError(t, st.RevokeKey(ctx, key.ID))
	require.NoError(t, st.RevokeKey(ctx, key.ID), "revoking twice is a no-op")
	require.ErrorIs(t, st.RevokeKey(ctx, "key_missing"), store.ErrUnknownKey)
	_, err = cache.Authenticate(ctx, plain)
	require.NoError(t, err, "cached within the TTL")
	now = now.Add(time.Second)
	_, err = cache.Authenticate(ctx, plain)
	require.ErrorIs(t, err, auth.ErrUnauthorized, "revocation honoured after the TTL")
}

func testAccounts(t *testing.T, db *sqldb.DB) {
	ctx := context.Background()
	st := newStore(t, db)
	const password = "correct-horse-battery-staple"
	cfg := map[string]any{"host": "127.0.0.1", "port": 25, "username": "u", "password": password,
		"from": "a@b.io", "tls": "none", "nested": map[string]any{"token": "nested-token-value"}}
	a, err := st.CreateAccount(ctx, push.ChannelEmail, "mail", cfg)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(a.ID, "acc_"))
	require.Equal(t, "****le", a.Config["password"])
	require.Equal(t, "****ue", a.Config["nested"].(map[string]any)["token"])
	require.Equal(t, password, cfg["password"], "the caller's map is not modified")

	var raw string
	require.NoError(t, db.QueryRowContext(ctx, db.Rebind("SELECT config FROM push_channel_accounts WHERE id = ?"), a.ID).Scan(&raw))
	require.NotContains(t, raw, password)
	require.NotContains(t, raw, "nested-token-value")
	require.Contains(t, raw, "enc:v1:")

	full, err := st.AccountForSending(ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, password, full.Config["password"])
	require.Equal(t, "nested-token-value", full.Config["nested"].(map[string]any)["token"])

	// A ciphertext is bound to its account: copied into another, it fails.
	b, err := st.CreateAccount(ctx, push.ChannelWebhook, "hook", map[string]any{"url": "http://127.0.0.1/x", "secret": "s3cret-s3cret"})
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, db.Rebind("UPDATE push_channel_accounts SET config = ? WHERE id = ?"), raw, b.ID)
	require.NoError(t, err)
	_, err = st.AccountForSending(ctx, b.ID)
	require.Error(t, err)
	_, err = db.ExecContext(ctx, db.Rebind("DELETE FROM push_channel_accounts WHERE id = ?"), b.ID)
	require.NoError(t, err)

	// Rotation: a store with a new master key reads old secrets when given
	// the old key, and fails without it.
	rotated, err := store.New(db, masterKey(1), nil, store.WithPreviousMasterKeys(masterKey(0)))
	require.NoError(t, err)
	full, err = rotated.AccountForSending(ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, password, full.Config["password"])
	stranger, err := store.New(db, masterKey(1), nil)
	require.NoError(t, err)
	_, err = stranger.AccountForSending(ctx, a.ID)
	require.Error(t, err)
	_, err = store.New(db, []byte("short"), nil)
	require.ErrorIs(t, err, store.ErrMasterKey)

	upd, err := st.UpdateAccount(ctx, a.ID, func(acc *store.Account) error {
		acc.Name = "mail2"
		acc.Config["host"] = "127.0.0.2"
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, "mail2", upd.Name)
	full, err = st.AccountForSending(ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, password, full.Config["password"], "an update keeps the secret")
	require.Equal(t, "127.0.0.2", full.Config["host"])

	_, err = st.Account(ctx, "acc_missing")
	require.ErrorIs(t, err, push.ErrUnknownAccount)

	for i := range 3 {
		_, err := st.CreateAccount(ctx, push.ChannelInbox, "inbox"+string(rune('0'+i)), map[string]any{})
		require.NoError(t, err)
	}
	page, err := st.ListAccounts(ctx, "", store.Page{Limit: 2})
	require.NoError(t, err)
	require.Len(t, page, 2)
	rest, err := st.ListAccounts(ctx, "", store.Page{Limit: 10, Offset: 2})
	require.NoError(t, err)
	require.Len(t, rest, 2)
	inbox, err := st.ListAccounts(ctx, push.ChannelInbox, store.Page{})
	require.NoError(t, err)
	require.Len(t, inbox, 3)

	tpl, err := st.CreateTemplate(ctx, push.Template{Name: "t", Channel: push.ChannelEmail, MsgType: push.MsgNotice,
		Kind: push.KindRealtime, AccountID: a.ID, Quiet: push.QuietNone, TimeZone: "UTC",
		Content: push.Content{Subject: "s", Body: "b"}}, "key_1")
	require.NoError(t, err)
	require.ErrorIs(t, st.DeleteAccount(ctx, a.ID), store.ErrAccountInUse)
	_, err = st.Transition(ctx, tpl.ID, 0, store.ActionDisable, "key_1", "")
	require.NoError(t, err)
	require.NoError(t, st.DeleteAccount(ctx, a.ID))
	require.ErrorIs(t, st.DeleteAccount(ctx, a.ID), push.ErrUnknownAccount)
}

func testTemplates(t *testing.T, db *sqldb.DB) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	st := newStore(t, db, store.WithClock(func() time.Time { return now }))
	in := push.Template{Name: "welcome", Channel: push.ChannelInbox, MsgType: push.MsgNotice, Kind: push.KindRealtime,
		Quiet: push.QuietDelay, TimeZone: "Asia/Shanghai", Content: push.Content{Text: "hi {{.name}}"}}
	tpl, err := st.CreateTemplate(ctx, in, "key_author")
	require.NoError(t, err)
	require.Positive(t, tpl.ID)
	require.Equal(t, push.StatusDraft, tpl.Status)
	require.Equal(t, int64(1), tpl.Version)
	require.Equal(t, "key_author", tpl.CreatedBy)
	require.Equal(t, now, tpl.CreatedAt)
	require.Equal(t, in.Content, tpl.Content)

	_, err = st.Transition(ctx, tpl.ID, 0, store.ActionApprove, "key_rev", "")
	require.ErrorIs(t, err, push.ErrInvalidTransition, "a draft cannot be approved")

	tpl, err = st.Transition(ctx, tpl.ID, 0, store.ActionSubmit, "key_author", "")
	require.NoError(t, err)
	require.Equal(t, push.StatusPending, tpl.Status)
	require.Equal(t, int64(2), tpl.Version)
	require.Equal(t, "key_author", tpl.SubmittedBy)
	require.NotNil(t, tpl.SubmittedAt)

	tpl, err = st.Transition(ctx, tpl.ID, 0, store.ActionReject, "key_rev", "too vague")
	require.NoError(t, err)
	require.Equal(t, push.StatusRejected, tpl.Status)
	require.Equal(t, "too vague", tpl.RejectReason)
	require.Equal(t, "key_rev", tpl.ReviewedBy)

	_, err = st.Transition(ctx, tpl.ID, 0, store.ActionSubmit, "key_author", "")
	require.ErrorIs(t, err, push.ErrInvalidTransition, "a rejected template is edited before resubmitting")

	tpl, err = st.UpdateTemplate(ctx, tpl.ID, 0, func(t *push.Template) error {
		t.Content.Text = "hello {{.name}}"
		t.Channel = push.ChannelSMS
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, push.StatusDraft, tpl.Status)
	require.Equal(t, push.ChannelInbox, tpl.Channel, "the channel never changes")
	require.Equal(t, int64(4), tpl.Version)

	tpl, err = st.Transition(ctx, tpl.ID, 0, store.ActionSubmit, "key_author", "")
	require.NoError(t, err)
	require.Empty(t, tpl.RejectReason)
	_, err = st.Transition(ctx, tpl.ID, tpl.Version-1, store.ActionApprove, "key_rev", "")
	require.ErrorIs(t, err, store.ErrVersionConflict)
	tpl, err = st.Transition(ctx, tpl.ID, tpl.Version, store.ActionApprove, "key_rev", "")
	require.NoError(t, err)
	require.Equal(t, push.StatusApproved, tpl.Status)

	cp, err := st.CopyTemplate(ctx, tpl.ID, "key_copier")
	require.NoError(t, err)
	require.NotEqual(t, tpl.ID, cp.ID)
	require.Equal(t, push.StatusDraft, cp.Status)
	require.Equal(t, "welcome (copy)", cp.Name)
	require.Equal(t, tpl.Content, cp.Content)
	require.Equal(t, "key_copier", cp.CreatedBy)

	tpl, err = st.UpdateTemplate(ctx, tpl.ID, 0, func(t *push.Template) error { t.Name = "welcome2"; return nil })
	require.NoError(t, err)
	require.Equal(t, push.StatusDraft, tpl.Status, "an edit of an approved template needs re-approval")

	tpl, err = st.Transition(ctx, tpl.ID, 0, store.ActionDisable, "key_admin", "")
	require.NoError(t, err)
	require.Equal(t, push.StatusDisabled, tpl.Status)
	again, err := st.Transition(ctx, tpl.ID, 0, store.ActionDisable, "key_admin", "")
	require.NoError(t, err)
	require.Equal(t, tpl.Version, again.Version, "disabling twice changes nothing")
	_, err = st.UpdateTemplate(ctx, tpl.ID, 0, func(*push.Template) error { return nil })
	require.ErrorIs(t, err, push.ErrInvalidTransition)

	_, err = st.Template(ctx, 999_999)
	require.ErrorIs(t, err, push.ErrUnknownTemplate)
	_, err = st.Transition(ctx, 999_999, 0, store.ActionSubmit, "k", "")
	require.ErrorIs(t, err, push.ErrUnknownTemplate)

	list, err := st.ListTemplates(ctx, store.TemplateFilter{}, store.Page{Limit: 1})
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, cp.ID, list[0].ID, "newest first")
	list, err = st.ListTemplates(ctx, store.TemplateFilter{Status: push.StatusDisabled, Channel: push.ChannelInbox}, store.Page{})
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, tpl.ID, list[0].ID)
}

// testApproveVersusEdit races an approval against an edit of the same
// pending template many times: whichever lands first, an approved template
// never carries content its reviewer did not see.
func testApproveVersusEdit(t *testing.T, db *sqldb.DB) {
	ctx := context.Background()
	st := newStore(t, db)
	for i := range 10 {
		tpl, err := st.CreateTemplate(ctx, push.Template{Name: "race", Channel: push.ChannelInbox, MsgType: push.MsgNotice,
			Kind: push.KindRealtime, Quiet: push.QuietNone, TimeZone: "UTC", Content: push.Content{Text: "reviewed"}}, "k")
		require.NoError(t, err)
		tpl, err = st.Transition(ctx, tpl.ID, 0, store.ActionSubmit, "k", "")
		require.NoError(t, err)

		var wg sync.WaitGroup
		var approveErr, editErr error
		wg.Go(func() {
			_, approveErr = st.Transition(ctx, tpl.ID, tpl.Version, store.ActionApprove, "rev", "")
		})
		wg.Go(func() {
			_, editErr = st.UpdateTemplate(ctx, tpl.ID, 0, func(t *push.Template) error { t.Content.Text = "sneaky"; return nil })
		})
		wg.Wait()
		require.NoError(t, editErr, "round %d", i)
		final, err := st.Template(ctx, tpl.ID)
		require.NoError(t, err)
		require.Equal(t, "sneaky", final.Content.Text)
		require.Equal(t, push.StatusDraft, final.Status, "round %d: the edit always leaves a draft", i)
		if approveErr != nil {
			require.ErrorIs(t, approveErr, store.ErrVersionConflict, "round %d", i)
			require.Equal(t, tpl.Version+1, final.Version)
		} else {
			require.Equal(t, tpl.Version+2, final.Version, "round %d: approve then edit", i)
		}
	}
}

func TestNext(t *testing.T) {
	all := []push.TemplateStatus{push.StatusDraft, push.StatusPending, push.StatusApproved, push.StatusRejected, push.StatusDisabled}
	want := map[store.Action]map[push.TemplateStatus]push.TemplateStatus{
		store.ActionSubmit:  {push.StatusDraft: push.StatusPending},
		store.ActionApprove: {push.StatusPending: push.StatusApproved},
		store.ActionReject:  {push.StatusPending: push.StatusRejected},
		store.ActionEdit: {push.StatusDraft: push.StatusDraft, push.StatusPending: push.StatusDraft,
			push.StatusApproved: push.StatusDraft, push.StatusRejected: push.StatusDraft},
		store.ActionDisable: {push.StatusDraft: push.StatusDisabled, push.StatusPending: push.StatusDisabled,
			push.StatusApproved: push.StatusDisabled, push.StatusRejected: push.StatusDisabled, push.StatusDisabled: push.StatusDisabled},
	}
	for a, ok := range want {
		for _, from := range all {
			t.Run(string(a)+"/"+string(from), func(t *testing.T) {
				to, err := store.Next(from, a)
				if exp, allowed := ok[from]; allowed {
					require.NoError(t, err)
					require.Equal(t, exp, to)
					return
				}
				require.ErrorIs(t, err, push.ErrInvalidTransition)
			})
		}
	}
}

func TestMaskAndDerive(t *testing.T) {
	require.Equal(t, "****", store.Mask("short"))
	require.Equal(t, "****yz", store.Mask("abcdefxyz"))
	require.True(t, store.IsMasked(store.Mask("abcdefxyz")))
	require.False(t, store.IsMasked("****abcdef"))
	k1, err := store.DeriveMasterKey("a long passphrase")
	require.NoError(t, err)
	k2, err := store.DeriveMasterKey("a long passphrase")
	require.NoError(t, err)
	require.Len(t, k1, store.MasterKeySize)
	require.Equal(t, k1, k2)
	_, err = store.DeriveMasterKey("")
	require.ErrorIs(t, err, store.ErrMasterKey)
}

func TestHasKeys(t *testing.T) {
	sqltest.EachDialect(t, func(t *testing.T, db *sqldb.DB) {
		st := newStore(t, db)
		ctx := t.Context()
		has, err := st.HasKeys(ctx)
		require.NoError(t, err)
		require.False(t, has)
		_, _, err = st.CreateKey(ctx, store.DefaultAppID, "first", auth.AllScopes())
		require.Error(t, err, "the app must exist first")
		require.NoError(t, st.EnsureApp(ctx, store.DefaultAppID, "Default app"))
		_, _, err = st.CreateKey(ctx, store.DefaultAppID, "first", auth.AllScopes())
		require.NoError(t, err)
		has, err = st.HasKeys(ctx)
		require.NoError(t, err)
		require.True(t, has)
	}, store.Migrations())
}
