package rules_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/dynconf"
	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/limit"
	"github.com/waypost/waypost/internal/push/rules"
)

func newRegistry(t *testing.T, d rules.Defaults) (*dynconf.Registry, *rules.Settings) {
	t.Helper()
	db := sqltest.New(t, sqldb.SQLite, sqldb.PlatformMigrations())
	r, err := dynconf.NewRegistry(dynconf.NewStore(db, nil), dynconf.Config{}, nil, nil)
	require.NoError(t, err)
	return r, rules.Register(r, d)
}

func TestRegisterDefaults(t *testing.T) {
	r, s := newRegistry(t, rules.Defaults{
		Pool:  rules.Pool{Workers: 3, Queue: 7},
		Retry: rules.RetryPolicy{MaxAttempts: 9},
	})
	require.Equal(t, []string{"push.dedup", "push.discard", "push.limits", "push.pools", "push.quiet",
		"push.retry", "push.ttl", "push.whitelist"}, r.Names())

	require.Equal(t, rules.Pool{Workers: 3, Queue: 7}, s.Pools.Get().For("email.notice"), "the config's pool size is the default")
	require.Equal(t, rules.RetryPolicy{MaxAttempts: 9, Backoff: rules.Duration(time.Second), MaxBackoff: rules.Duration(time.Minute)},
		s.Retry.Get().For(push.ChannelSMS), "fields the config leaves out keep the built-in defaults")
	require.Equal(t, rules.Duration(5*time.Minute), s.TTL.Get()[push.MsgAuthCode])
	require.False(t, s.Whitelist.Get().Enabled)
	require.Empty(t, s.Discard.Get().Templates)
	require.True(t, s.Limits.Get().For("any").Unlimited())
	require.Equal(t, 1, s.Dedup.Get().Content.Num)
	require.Equal(t, "09:00", s.Quiet.Get().DelayUntil.String())

	// The API shows every default in the documented shape.
	for name, want := range map[string]string{
		rules.NameTTL:       `{"auth_code":"5m","notice":"24h","marketing":"24h"}`,
		rules.NameDiscard:   `{"templates":[]}`,
		rules.NameWhitelist: `{"enabled":false,"receivers":[]}`,
		rules.NamePools:     `{"default":{"workers":3,"queue":7},"pools":{}}`,
		rules.NameRetry:     `{"default":{"maxAttempts":9,"backoff":"1s","maxBackoff":"1m"},"channels":{}}`,
		rules.NameQuiet:     `{"start":"00:00","end":"08:00","delayUntil":"09:00"}`,
		rules.NameLimits:    `{"default":{"mode":"requests","rate":0}}`,
	} {
		v, err := r.View(name)
		require.NoError(t, err)
		b, err := json.Marshal(v.Value)
		require.NoError(t, err)
		require.JSONEq(t, want, string(b), name)
	}
}

func TestUpdateValidates(t *testing.T) {
	r, s := newRegistry(t, rules.Defaults{})
	tests := []struct {
		setting string
		value   string
		want    []string // substrings of the error; empty: accepted
	}{
		{rules.NameDiscard, `{"templates":[3,4]}`, nil},
		{rules.NameDiscard, `{"templates":[0,4,4]}`, []string{"templates[0]: 0 is not a template id", "templates[2]: 4 listed twice"}},
		{rules.NameDiscard, `{"template":[3]}`, []string{`unknown field "template"`}},
		{rules.NameWhitelist, `{"enabled":true,"receivers":["a@x.io"]}`, nil},
		{rules.NameWhitelist, `{"enabled":true,"receivers":["", "b", "b"]}`, []string{"receivers[0]: empty receiver", `receivers[2]: "b" listed twice`}},
		{rules.NameWhitelist, `{"receivers":["` + strings.Repeat("x", 300) + `"]}`, []string{"receivers[0]: not valid UTF-8 of at most 256 bytes"}},
		{rules.NamePools, `{"pools":{"email.marketing":{"workers":2,"queue":10,"inFlight":5}}}`, nil},
		{rules.NamePools, `{"default":{"workers":0,"queue":-1}}`, []string{"default.workers: 0 not in 1..4096", "default.queue: -1 not in 0..100000"}},
		{rules.NamePools, `{"pools":{"email.bulk":{"workers":1}}}`, []string{`pools.email.bulk: "email.bulk" is not <channel>.<msgType>`}},
		{rules.NamePools, `{"pools":{"sms.notice":{"workers":4,"queue":4,"inFlight":2}}}`, []string{"pools.sms.notice.inFlight: 2 not in workers..workers+queue (4..8)"}},
		{rules.NameRetry, `{"channels":{"sms":{"maxAttempts":3,"backoff":"5s"}}}`, nil},
		{rules.NameRetry, `{"default":{"maxAttempts":0}}`, []string{"default.maxAttempts: 0 not in 1..100"}},
		{rules.NameRetry, `{"channels":{"fax":{"maxAttempts":3}}}`, []string{`channels.fax: unknown channel "fax"`}},
		{rules.NameRetry, `{"channels":{"sms":{"backoff":"2h"}}}`, []string{"channels.sms.backoff: 2h not in (0, 1h]"}},
		{rules.NameRetry, `{"channels":{"sms":{"backoff":"2m"}}}`, []string{"channels.sms.maxBackoff: 1m is below backoff 2m"}},
		{rules.NameRetry, `{"default":{"backoff":"soon"}}`, []string{`invalid duration "soon"`}},
		{rules.NameTTL, `{"auth_code":"10m"}`, nil},
		{rules.NameTTL, `{"auth_code":"-1m","sms":"1h"}`, []string{"auth_code: -1m not in 0..720h", `sms: unknown message type "sms"`}},
		{rules.NameLimits, `{"accounts":{"robot":{"mode":"requests","rate":20,"per":"1m","maxWait":"30s"}}}`, nil},
		{rules.NameLimits, `{"default":{"mode":"bytes","rate":1}}`, []string{`default.mode: "bytes" is not "requests" or "receivers"`}},
		{rules.NameDedup, `{"deduplication_10":{"num":1,"time":600}}`, nil},
		{rules.NameDedup, `{"deduplication_10":{"num":1,"time":0}}`, []string{"deduplication_10.time: 0 not in 1..2592000 seconds"}},
		{rules.NameQuiet, `{"start":"22:00","end":"07:00","delayUntil":"08:00"}`, nil},
		{rules.NameQuiet, `{"start":"22:00","end":"07:00","delayUntil":"06:00"}`, []string{"delayUntil: 06:00 falls inside the quiet window"}},
	}
	for _, tc := range tests {
		t.Run(tc.setting+" "+tc.value, func(t *testing.T) {
			_, err := r.Update(t.Context(), tc.setting, json.RawMessage(tc.value), "test", 0)
			if len(tc.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, dynconf.ErrInvalid)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
	// The accepted values are in force.
	require.Equal(t, []int64{3, 4}, s.Discard.Get().Templates)
	require.Equal(t, rules.Pool{Workers: 2, Queue: 10, InFlight: 5}, s.Pools.Get().For("email.marketing"))
	require.Equal(t, rules.RetryPolicy{MaxAttempts: 3, Backoff: rules.Duration(5 * time.Second), MaxBackoff: rules.Duration(time.Minute)},
		s.Retry.Get().For(push.ChannelSMS), "a field left out takes the default's")
	ttl := s.TTL.Get()
	require.Equal(t, rules.Duration(10*time.Minute), ttl[push.MsgAuthCode])
	require.Equal(t, rules.Duration(24*time.Hour), ttl[push.MsgNotice], "a type left out keeps its default")
	require.Equal(t, limit.Limit{Mode: limit.ModeRequests, Rate: 20, Per: limit.Duration(time.Minute), Burst: 1,
		MaxWait: limit.Duration(30 * time.Second)}, s.Limits.Get().For("robot"))
}

func TestRetryDelay(t *testing.T) {
	p := rules.RetryPolicy{MaxAttempts: 5, Backoff: rules.Duration(time.Second), MaxBackoff: rules.Duration(5 * time.Second)}
	tests := []struct {
		failures int
		jitter   float64
		want     time.Duration
	}{
		{1, 0, 500 * time.Millisecond},
		{1, 0.5, 750 * time.Millisecond},
		{1, 0.999999, time.Second - time.Microsecond/2},
		{2, 0, time.Second},
		{3, 0, 2 * time.Second},
		{4, 0, 2500 * time.Millisecond}, // capped at 5s, then halved
		{40, 1, 5 * time.Second},
		{3, -3, 2 * time.Second}, // jitter is clamped to [0, 1]
	}
	for _, tc := range tests {
		require.InDelta(t, tc.want, p.Delay(tc.failures, tc.jitter), float64(time.Microsecond),
			"failures %d jitter %v", tc.failures, tc.jitter)
	}
}

func TestDurationString(t *testing.T) {
	for d, want := range map[time.Duration]string{
		24 * time.Hour: "24h", 5 * time.Minute: "5m", 90 * time.Second: "1m30s",
		time.Hour + time.Second: "1h0m1s", 500 * time.Millisecond: "500ms", 0: "0s",
	} {
		require.Equal(t, want, rules.Duration(d).String())
	}
}
