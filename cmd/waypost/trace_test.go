package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/httpx"
	"github.com/waypost/waypost/internal/platform/kv/memkv"
	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/trace"
)

// traceServer serves the trace API over a SQLite detail store holding one
// message of template 42, behind a check of testKey.
func traceServer(t *testing.T) string {
	t.Helper()
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	store := trace.NewSQLStore(sqltest.New(t, sqldb.SQLite, trace.Migrations()))
	a := func(rcv, state string, d time.Duration, detail string) push.Anchor {
		return push.Anchor{EventID: rcv + ":" + state, MessageID: "01JM1", BusinessID: "2000004220260301",
			Receiver: rcv, State: state, At: at.Add(d), Detail: detail}
	}
	_, err := store.Insert(t.Context(), []push.Anchor{
		a("a@x.io", push.StateReceived, 0, ""),
		a("b@x.io", push.StateReceived, 0, ""),
		a("bad", push.StateInvalidReceiver, 0, "not an email address"),
		a("a@x.io", push.StateSent, 1500*time.Millisecond, "smtp id 42"),
		a("b@x.io", push.StateSendFailed, 2*time.Second, "550 no such\nuser"),
	})
	require.NoError(t, err)
	kv := memkv.New()
	t.Cleanup(func() { require.NoError(t, kv.Close()) })
	reader := trace.NewReader(trace.NewViews(kv, trace.ViewConfig{}), store, 100, nil)
	api := trace.NewAPI(reader, nil, trace.APIConfig{Now: func() time.Time { return at }}, nil)
	mux := http.NewServeMux()
	authed := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+testKey {
				httpx.WriteError(w, http.StatusUnauthorized, "unauthorized", "unknown API key")
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	api.Register(mux, authed, authed)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestTraceCLI(t *testing.T) {
	base := traceServer(t)
	env := []string{"WAYPOST_SERVER=" + base, "WAYPOST_API_KEY=" + testKey}
	tests := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{
			name: "message",
			args: []string{"trace", "message", "01JM1"},
			want: `message 01JM1: 5 events (detail)
AT                        RECEIVER  STATE             BUSINESS ID       DETAIL
2026-03-01T09:00:00.000Z  a@x.io    received          2000004220260301
2026-03-01T09:00:00.000Z  b@x.io    received          2000004220260301
2026-03-01T09:00:00.000Z  bad       invalid_receiver  2000004220260301  not an email address
2026-03-01T09:00:01.500Z  a@x.io    sent              2000004220260301  smtp id 42
2026-03-01T09:00:02.000Z  b@x.io    send_failed       2000004220260301  550 no such user
`,
		},
		{
			name: "receiver with flags after the arguments",
			args: []string{"trace", "receiver", "a@x.io", "--date", "20260301"},
			want: `receiver a@x.io on 20260301: 2 events (detail)
AT                        MESSAGE  STATE     BUSINESS ID       DETAIL
2026-03-01T09:00:00.000Z  01JM1    received  2000004220260301
2026-03-01T09:00:01.500Z  01JM1    sent      2000004220260301  smtp id 42
`,
		},
		{
			name: "receiver today, server and key as flags",
			args: []string{"trace", "--server", base, "--key", testKey, "receiver", "nobody"},
			env:  []string{},
			want: "receiver nobody on today: 0 events (detail)\n",
		},
		{
			name: "template",
			args: []string{"trace", "template", "42", "--date", "20260301"},
			want: `template 42 on 20260301: businessId 2000004220260301 (detail)

STATE                       COUNT
received                    2
invalid_receiver            1
discarded                   0
quiet_dropped               0
quiet_delayed               0
content_deduplicated        0
frequency_capped            0
not_whitelisted             0
sent                        1
send_failed                 1
delivered                   0
undelivered                 0
recalled                    0

FUNNEL                      DROPPED  REMAINING
requested                            3
invalid_receiver            1        2
discarded                   0        2
quiet_dropped               0        2
content_deduplicated        0        2
frequency_capped            0        2
not_whitelisted             0        2
to send                              2

OUTCOME                     COUNT
sent                        1
send_failed                 1
in flight                   0
quiet_delayed (not a loss)  0
delivered                   0
undelivered                 0
`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := env
			if tc.env != nil {
				e = tc.env
			}
			var out bytes.Buffer
			require.NoError(t, run(context.Background(), tc.args, e, &out, io.Discard))
			require.Equal(t, tc.want, out.String())
		})
	}

	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"trace", "--json", "message", "01JM1"}, env, &out, io.Discard))
	require.Contains(t, out.String(), `"state": "send_failed"`)
}

func TestTraceCLIErrors(t *testing.T) {
	base := traceServer(t)
	env := []string{"WAYPOST_SERVER=" + base, "WAYPOST_API_KEY=" + testKey}
	for _, tc := range []struct {
		name  string
		args  []string
		env   []string
		usage bool
		want  string
	}{
		{name: "no query", args: []string{"trace"}, usage: true},
		{name: "unknown query", args: []string{"trace", "parcel", "x"}, usage: true},
		{name: "extra argument", args: []string{"trace", "message", "a", "b"}, usage: true},
		{name: "bad template id", args: []string{"trace", "template", "x"}, usage: true},
		{name: "bad date", args: []string{"trace", "receiver", "r", "--date", "2026-03-01"}, usage: true},
		{name: "date of a message", args: []string{"trace", "message", "m", "--date", "20260301"}, usage: true},
		{name: "no server", args: []string{"trace", "message", "m"}, env: []string{}, usage: true},
		{name: "API error code", args: []string{"trace", "template", "1000000"}, want: "invalid_argument: template id must be 1-999999"},
		{name: "bad key", args: []string{"trace", "--key", "wp_wrong", "message", "m"}, want: "unauthorized: unknown API key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := env
			if tc.env != nil {
				e = tc.env
			}
			err := run(context.Background(), tc.args, e, io.Discard, io.Discard)
			if tc.usage {
				require.ErrorIs(t, err, errUsage)
				return
			}
			require.EqualError(t, err, tc.want)
		})
	}
}
