package trace_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/trace"
)

func TestAPI(t *testing.T) {
	db := sqltest.New(t, sqldb.SQLite, trace.Migrations())
	st := trace.NewStore(db)
	rt := func(a push.Anchor) push.Anchor { a.BusinessID = "2000004220260301"; return a }
	sc := func(a push.Anchor) push.Anchor { a.BusinessID = "1000004320260301"; return a }
	failed := rt(anchor("m1.send_failed.0", "m1", "b@x.io", push.StateSendFailed, t0.Add(3*time.Second)))
	failed.Detail = "550 no such user"
	_, err := st.Insert(t.Context(), []push.Anchor{
		rt(anchor("m1.received.0", "m1", "a@x.io", push.StateReceived, t0)),
		rt(anchor("m1.sent.0", "m1", "a@x.io", push.StateSent, t0.Add(2*time.Second))),
		rt(anchor("m1.received.1", "m1", "b@x.io", push.StateReceived, t0.Add(time.Millisecond))),
		failed,
		rt(anchor("m2.received.0", "m2", "a@x.io", push.StateReceived, t0.Add(25*time.Hour))),
		sc(anchor("m3.received.0", "m3", "c@x.io", push.StateReceived, t0)),
		sc(anchor("m3.quiet.0", "m3", "c@x.io", push.StateQuietDelayed, t0)),
	})
	require.NoError(t, err)

	mux := http.NewServeMux()
	now := func() time.Time { return t0.Add(time.Hour) }
	trace.NewAPI(st, trace.APIConfig{Now: now}, nil).Register(mux, func(h http.Handler) http.Handler { return h })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	zero := `"received":0,"invalid_receiver":0,"discarded":0,"quiet_dropped":0,"quiet_delayed":0,` +
		`"content_deduplicated":0,"frequency_capped":0,"not_whitelisted":0,"sent":0,"send_failed":0,"recalled":0`
	tests := []struct {
		name, path string
		code       int
		body       string
	}{
		{name: "message", path: "/api/v1/trace/messages/m1", code: 200, body: `{"events":[
			{"messageId":"m1","receiver":"a@x.io","state":"received","at":"2026-03-01T09:00:00Z","businessId":"2000004220260301","detail":""},
			{"messageId":"m1","receiver":"b@x.io","state":"received","at":"2026-03-01T09:00:00.001Z","businessId":"2000004220260301","detail":""},
			{"messageId":"m1","receiver":"a@x.io","state":"sent","at":"2026-03-01T09:00:02Z","businessId":"2000004220260301","detail":""},
			{"messageId":"m1","receiver":"b@x.io","state":"send_failed","at":"2026-03-01T09:00:03Z","businessId":"2000004220260301","detail":"550 no such user"}]}`},
		{name: "unknown message", path: "/api/v1/trace/messages/nope", code: 200, body: `{"events":[]}`},
		{name: "receiver", path: "/api/v1/trace/receivers/a@x.io", code: 200, body: `{"events":[
			{"messageId":"m1","receiver":"a@x.io","state":"received","at":"2026-03-01T09:00:00Z","businessId":"2000004220260301","detail":""},
			{"messageId":"m1","receiver":"a@x.io","state":"sent","at":"2026-03-01T09:00:02Z","businessId":"2000004220260301","detail":""},
			{"messageId":"m2","receiver":"a@x.io","state":"received","at":"2026-03-02T10:00:00Z","businessId":"2000004220260301","detail":""}]}`},
		{name: "receiver on a date", path: "/api/v1/trace/receivers/a@x.io?date=20260302", code: 200, body: `{"events":[
			{"messageId":"m2","receiver":"a@x.io","state":"received","at":"2026-03-02T10:00:00Z","businessId":"2000004220260301","detail":""}]}`},
		{name: "bad date", path: "/api/v1/trace/receivers/a@x.io?date=2026-03-02", code: 400,
			body: `{"error":{"code":"invalid_argument","message":"date \"2026-03-02\" is not yyyyMMdd"}}`},
		{name: "realtime template", path: "/api/v1/trace/templates/42?date=20260301", code: 200,
			// m2 was sent on the 2nd but under the businessId of the 1st.
			body: `{"businessId":"2000004220260301","counts":{"received":3,"invalid_receiver":0,"discarded":0,"quiet_dropped":0,"quiet_delayed":0,` +
				`"content_deduplicated":0,"frequency_capped":0,"not_whitelisted":0,"sent":1,"send_failed":1,"recalled":0}}`},
		{name: "scheduled template", path: "/api/v1/trace/templates/43?date=20260301", code: 200,
			body: `{"businessId":"1000004320260301","counts":{"received":1,"invalid_receiver":0,"discarded":0,"quiet_dropped":0,"quiet_delayed":1,` +
				`"content_deduplicated":0,"frequency_capped":0,"not_whitelisted":0,"sent":0,"send_failed":0,"recalled":0}}`},
		{name: "template today", path: "/api/v1/trace/templates/7", code: 200,
			body: `{"businessId":"2000000720260301","counts":{` + zero + `}}`},
		{name: "bad template id", path: "/api/v1/trace/templates/1000000", code: 400,
			body: `{"error":{"code":"invalid_argument","message":"template id must be 1-999999"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := srv.Client().Get(srv.URL + tc.path)
			require.NoError(t, err)
			defer func() { _ = resp.Body.Close() }()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, tc.code, resp.StatusCode, string(body))
			require.JSONEq(t, tc.body, string(body))
		})
	}
}
