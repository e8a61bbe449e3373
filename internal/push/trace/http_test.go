package trace_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/fakeclock"
	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/trace"
	"github.com/waypost/waypost/internal/push/trace/receipt"
)

// fakeQueue records what is published, or fails.
type fakeQueue struct {
	queue.Queue // only Publish is used
	mu          sync.Mutex
	msgs        []queue.Message
	fail        bool
}

func (f *fakeQueue) Publish(_ context.Context, msgs ...queue.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errors.New("broker down")
	}
	f.msgs = append(f.msgs, msgs...)
	return nil
}

// published decodes every anchor published so far.
func (f *fakeQueue) published(t *testing.T) []push.Anchor {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []push.Anchor
	for _, m := range f.msgs {
		require.Equal(t, push.TraceTopic, m.Topic)
		as, err := push.DecodeAnchors(m.Value)
		require.NoError(t, err)
		out = append(out, as...)
	}
	return out
}

// traceEnv is the trace of one process: views on memkv and a SQLite detail
// store, both fed directly (the consumers are tested apart), behind the API.
type traceEnv struct {
	clock *fakeclock.Clock
	views *trace.Views
	store *trace.SQLStore
	q     *fakeQueue
	srv   *httptest.Server
}

func newTraceEnv(t *testing.T) *traceEnv {
	t.Helper()
	e := &traceEnv{clock: fakeclock.New(t0), q: &fakeQueue{}}
	e.views, _ = primed(t, e.clock, trace.ViewConfig{})
	e.store = trace.NewSQLStore(sqltest.New(t, sqldb.SQLite, trace.Migrations()))
	reader := trace.NewReader(e.views, e.store, 1000, nil)
	api := trace.NewAPI(reader, trace.NewRecorder(e.q, reader, e.clock.Now), trace.APIConfig{Now: e.clock.Now, MaxReceipts: 5}, nil)
	mux := http.NewServeMux()
	open := func(h http.Handler) http.Handler { return h }
	api.Register(mux, open, open)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

// record feeds anchors to both sinks, as the two consumer groups would.
func (e *traceEnv) record(t *testing.T, anchors ...push.Anchor) {
	t.Helper()
	for i := range anchors {
		require.NoError(t, trace.Validate(&anchors[i]))
	}
	require.NoError(t, e.views.Write(context.Background(), anchors))
	_, err := e.store.Insert(context.Background(), anchors)
	require.NoError(t, err)
}

func (e *traceEnv) do(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	resp, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// everyState is template 42's day with one receiver reaching each state,
// and a message of scheduled template 43.
func everyState() []push.Anchor {
	var out []push.Anchor
	add := func(msg, rcv, state string, at time.Time, detail string) {
		a := anchor(msg+":"+rcv+":"+state, msg, rcv, state, at)
		a.Detail = detail
		out = append(out, a)
	}
	add("m1", "a@x.io", push.StateReceived, t0, "")
	add("m1", "b@x.io", push.StateReceived, t0, "")
	add("m1", "bad", push.StateInvalidReceiver, t0, "not an email address")
	add("m1", "a@x.io", push.StateSent, t0.Add(2*time.Second), "")
	add("m1", "b@x.io", push.StateSendFailed, t0.Add(3*time.Second), "550 no such user")
	add("m1", "a@x.io", push.StateDelivered, t0.Add(time.Minute), "")
	for i, state := range []string{push.StateDiscarded, push.StateQuietDropped, push.StateQuietDelayed,
		push.StateContentDeduplicated, push.StateFrequencyCapped, push.StateNotWhitelisted} {
		rcv := string(rune('c'+i)) + "@x.io"
		add("m2", rcv, push.StateReceived, t0.Add(time.Hour), "")
		add("m2", rcv, state, t0.Add(time.Hour+time.Second), "")
	}
	sc := anchor("m3:c@x.io:received", "m3", "c@x.io", push.StateReceived, t0)
	sc.BusinessID = "1000004320260301"
	return append(out, sc)
}

const m1Events = `[
	{"messageId":"m1","receiver":"a@x.io","state":"received","at":"2026-03-01T09:00:00Z","businessId":"2000004220260301","detail":""},
	{"messageId":"m1","receiver":"b@x.io","state":"received","at":"2026-03-01T09:00:00Z","businessId":"2000004220260301","detail":""},
	{"messageId":"m1","receiver":"bad","state":"invalid_receiver","at":"2026-03-01T09:00:00Z","businessId":"2000004220260301","detail":"not an email address"},
	{"messageId":"m1","receiver":"a@x.io","state":"sent","at":"2026-03-01T09:00:02Z","businessId":"2000004220260301","detail":""},
	{"messageId":"m1","receiver":"b@x.io","state":"send_failed","at":"2026-03-01T09:00:03Z","businessId":"2000004220260301","detail":"550 no such user"},
	{"messageId":"m1","receiver":"a@x.io","state":"delivered","at":"2026-03-01T09:01:00Z","businessId":"2000004220260301","detail":""}]`

const aEvents = `[
	{"messageId":"m1","receiver":"a@x.io","state":"received","at":"2026-03-01T09:00:00Z","businessId":"2000004220260301","detail":""},
	{"messageId":"m1","receiver":"a@x.io","state":"sent","at":"2026-03-01T09:00:02Z","businessId":"2000004220260301","detail":""},
	{"messageId":"m1","receiver":"a@x.io","state":"delivered","at":"2026-03-01T09:01:00Z","businessId":"2000004220260301","detail":""}]`

const template42 = `"businessId":"2000004220260301",
	"counts":{"received":8,"invalid_receiver":1,"discarded":1,"quiet_dropped":1,"quiet_delayed":1,
		"content_deduplicated":1,"frequency_capped":1,"not_whitelisted":1,"sent":1,"send_failed":1,
		"delivered":1,"undelivered":0,"recalled":0},
	"funnel":{"requested":9,"steps":[
		{"stage":"invalid_receiver","dropped":1,"remaining":8},
		{"stage":"discarded","dropped":1,"remaining":7},
		{"stage":"quiet_dropped","dropped":1,"remaining":6},
		{"stage":"content_deduplicated","dropped":1,"remaining":5},
		{"stage":"frequency_capped","dropped":1,"remaining":4},
		{"stage":"not_whitelisted","dropped":1,"remaining":3}],
		"toSend":3,"sent":1,"sendFailed":1,"inFlight":1,"quietDelayed":1,"delivered":1,"undelivered":0}`

func TestAPIAnswersFromViewsThenDetailStore(t *testing.T) {
	e := newTraceEnv(t)
	e.record(t, everyState()...)
	zero := `"received":0,"invalid_receiver":0,"discarded":0,"quiet_dropped":0,"quiet_delayed":0,"content_deduplicated":0,` +
		`"frequency_capped":0,"not_whitelisted":0,"sent":0,"send_failed":0,"delivered":0,"undelivered":0,"recalled":0`
	zeroFunnel := `"funnel":{"requested":0,"steps":[{"stage":"invalid_receiver","dropped":0,"remaining":0},` +
		`{"stage":"discarded","dropped":0,"remaining":0},{"stage":"quiet_dropped","dropped":0,"remaining":0},` +
		`{"stage":"content_deduplicated","dropped":0,"remaining":0},{"stage":"frequency_capped","dropped":0,"remaining":0},` +
		`{"stage":"not_whitelisted","dropped":0,"remaining":0}],"toSend":0,"sent":0,"sendFailed":0,"inFlight":0,` +
		`"quietDelayed":0,"delivered":0,"undelivered":0}`
	tests := []struct {
		name, path string
		code       int
		// body is the answer at t0+1h, from the realtime views where they
		// have it; after every view expired, the detail store gives the
		// same events and counts.
		body, source string
	}{
		{name: "message", path: "/api/v1/trace/messages/m1", code: 200, body: `{"events":` + m1Events, source: "realtime"},
		{name: "unknown message", path: "/api/v1/trace/messages/nope", code: 200, body: `{"events":[]`, source: "detail"},
		{name: "receiver on a date", path: "/api/v1/trace/receivers/a@x.io?date=20260301", code: 200, body: `{"events":` + aEvents, source: "realtime"},
		{name: "receiver on another date", path: "/api/v1/trace/receivers/a@x.io?date=20260302", code: 200, body: `{"events":[]`, source: "detail"},
		{name: "template", path: "/api/v1/trace/templates/42?date=20260301", code: 200, body: `{` + template42, source: "realtime"},
		{name: "scheduled template", path: "/api/v1/trace/templates/43?date=20260301", code: 200,
			body: `{"businessId":"1000004320260301","counts":{` + strings.Replace(zero, `"received":0`, `"received":1`, 1) + `},` +
				funnelOf(map[string]int64{push.StateReceived: 1}), source: "realtime"},
		{name: "bad date", path: "/api/v1/trace/receivers/a@x.io?date=2026-03-02", code: 400,
			body: `{"error":{"code":"invalid_argument","message":"date \"2026-03-02\" is not yyyyMMdd"}}`},
		{name: "bad template id", path: "/api/v1/trace/templates/1000000", code: 400,
			body: `{"error":{"code":"invalid_argument","message":"template id must be 1-999999"}}`},
	}
	check := func(t *testing.T, expired bool) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				code, body := e.do(t, http.MethodGet, tc.path, "")
				require.Equal(t, tc.code, code, body)
				want := tc.body
				if tc.source != "" {
					src := tc.source
					if expired {
						src = "detail"
					}
					want += `,"source":"` + src + `"}`
				}
				require.JSONEq(t, want, body)
			})
		}
	}
	e.clock.Set(t0.Add(time.Hour))
	t.Run("realtime", func(t *testing.T) { check(t, false) })

	// Without a date, the receiver and template queries mean today.
	code, body := e.do(t, http.MethodGet, "/api/v1/trace/receivers/a@x.io", "")
	require.Equal(t, 200, code)
	require.JSONEq(t, `{"events":`+aEvents+`,"source":"realtime"}`, body)
	code, body = e.do(t, http.MethodGet, "/api/v1/trace/templates/7", "")
	require.Equal(t, 200, code)
	require.JSONEq(t, `{"businessId":"2000000720260301","counts":{`+zero+`},`+zeroFunnel+`,"source":"detail"}`, body)

	// Past every view's ttl (30 days for the counts), the detail store
	// answers the same.
	e.clock.Set(t0.Add(31 * 24 * time.Hour))
	t.Run("expired", func(t *testing.T) { check(t, true) })
}

// funnelOf renders the funnel JSON of counts.
func funnelOf(counts map[string]int64) string {
	b, err := json.Marshal(trace.NewFunnel(counts))
	if err != nil {
		panic(err)
	}
	return `"funnel":` + string(b)
}

func TestFunnel(t *testing.T) {
	tests := []struct {
		name   string
		counts map[string]int64
		want   trace.Funnel
	}{
		{name: "nothing", counts: map[string]int64{}, want: trace.Funnel{Steps: steps(0, 0, 0, 0, 0, 0, 0)}},
		{
			name: "every stage",
			counts: map[string]int64{push.StateReceived: 90, push.StateInvalidReceiver: 10, push.StateDiscarded: 5,
				push.StateQuietDropped: 4, push.StateQuietDelayed: 7, push.StateContentDeduplicated: 3, push.StateFrequencyCapped: 2,
				push.StateNotWhitelisted: 1, push.StateSent: 60, push.StateSendFailed: 5, push.StateDelivered: 50, push.StateUndelivered: 3},
			want: trace.Funnel{Requested: 100, Steps: steps(100, 10, 5, 4, 3, 2, 1), ToSend: 75, Sent: 60, SendFailed: 5,
				InFlight: 10, QuietDelayed: 7, Delivered: 50, Undelivered: 3},
		},
		{
			name:   "counts that do not add up stay non-negative",
			counts: map[string]int64{push.StateReceived: 2, push.StateDiscarded: 5, push.StateSent: 1},
			want:   trace.Funnel{Requested: 2, Steps: steps(2, 0, 5, 0, 0, 0, 0), Sent: 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, trace.NewFunnel(tc.counts))
		})
	}
}

// steps builds the funnel steps from the requested count and each stage's drop.
func steps(requested int64, dropped ...int64) []trace.FunnelStep {
	stages := []string{push.StateInvalidReceiver, push.StateDiscarded, push.StateQuietDropped,
		push.StateContentDeduplicated, push.StateFrequencyCapped, push.StateNotWhitelisted}
	out := make([]trace.FunnelStep, len(stages))
	left := requested
	for i, s := range stages {
		left = max(left-dropped[i], 0)
		out[i] = trace.FunnelStep{Stage: s, Dropped: dropped[i], Remaining: left}
	}
	return out
}

func TestReceipts(t *testing.T) {
	e := newTraceEnv(t)
	e.record(t, everyState()...)
	e.clock.Set(t0.Add(time.Hour))
	post := func(body string) (int, string) { return e.do(t, http.MethodPost, "/api/v1/trace/receipts", body) }

	code, body := post(`{"receipts":[
		{"messageId":"m1","receiver":"b@x.io","state":"undelivered","at":"2026-03-01T09:05:00Z","detail":"DELIVRD=0"},
		{"messageId":"m1","receiver":"a@x.io","state":"delivered"},
		{"messageId":"nope","receiver":"a@x.io","state":"delivered"},
		{"messageId":"m1","receiver":"z@x.io","state":"delivered"}]}`)
	require.Equal(t, http.StatusAccepted, code, body)
	require.JSONEq(t, `{"recorded":2,"rejected":[
		{"index":2,"messageId":"nope","receiver":"a@x.io","code":"unknown_message","message":"no trace of message nope"},
		{"index":3,"messageId":"m1","receiver":"z@x.io","code":"unknown_receiver","message":"message m1 has no receiver \"z@x.io\""}]}`, body)
	got := e.q.published(t)
	require.Len(t, got, 2)
	require.Equal(t, push.Anchor{EventID: got[0].EventID, MessageID: "m1", BusinessID: biz, Receiver: "b@x.io",
		State: push.StateUndelivered, At: time.Date(2026, 3, 1, 9, 5, 0, 0, time.UTC), Detail: "DELIVRD=0"}, got[0])
	require.Equal(t, t0.Add(time.Hour), got[1].At, "a receipt without a time is stamped when recorded")

	// Recorded through the trace like any anchor: the same receipt again
	// (a provider retrying its callback) counts once.
	e.record(t, got...)
	code, _ = post(`{"receipts":[{"messageId":"m1","receiver":"a@x.io","state":"delivered"}]}`)
	require.Equal(t, http.StatusAccepted, code)
	e.record(t, e.q.published(t)...)
	code, body = e.do(t, http.MethodGet, "/api/v1/trace/templates/42?date=20260301", "")
	require.Equal(t, 200, code)
	var day trace.TemplateDay
	require.NoError(t, json.Unmarshal([]byte(body), &day))
	require.EqualValues(t, 2, day.Counts[push.StateDelivered], "the seed's delivered and a@x.io's receipt")
	require.EqualValues(t, 1, day.Counts[push.StateUndelivered])

	for _, tc := range []struct{ name, body, code string }{
		{"bad state", `{"receipts":[{"messageId":"m1","receiver":"a@x.io","state":"read"}]}`, "invalid_receipt"},
		{"no receiver", `{"receipts":[{"messageId":"m1","state":"delivered"}]}`, "invalid_receipt"},
		{"none", `{"receipts":[]}`, "empty_receipts"},
		{"too many", `{"receipts":[` + strings.Repeat(`{"messageId":"m1","receiver":"a@x.io","state":"delivered"},`, 5) +
			`{"messageId":"m1","receiver":"a@x.io","state":"delivered"}]}`, "too_many_receipts"},
		{"unknown field", `{"receipts":[],"x":1}`, "invalid_body"},
		{"not JSON", `{`, "invalid_body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(tc.body)
			require.Equal(t, http.StatusBadRequest, code, body)
			var e struct{ Error struct{ Code string } }
			require.NoError(t, json.Unmarshal([]byte(body), &e))
			require.Equal(t, tc.code, e.Error.Code)
		})
	}

	e.q.mu.Lock()
	e.q.fail = true
	e.q.mu.Unlock()
	code, body = post(`{"receipts":[{"messageId":"m1","receiver":"a@x.io","state":"delivered"}]}`)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, `"queue_unavailable"`)
}

// TestReceiptsOfABigMessage finds a receiver among more events than a
// query answers, in the views and in the detail store.
func TestReceiptsOfABigMessage(t *testing.T) {
	c := fakeclock.New(t0)
	views, _ := primed(t, c, trace.ViewConfig{})
	store := trace.NewSQLStore(sqltest.New(t, sqldb.SQLite, trace.Migrations()))
	var big []push.Anchor
	for i := range 5 {
		rcv := fmt.Sprintf("r%d@x.io", i)
		big = append(big, anchor("big.received."+rcv, "big", rcv, push.StateReceived, t0.Add(time.Duration(i)*time.Second)))
	}
	require.NoError(t, views.Write(t.Context(), big))
	_, err := store.Insert(t.Context(), big)
	require.NoError(t, err)
	reader := trace.NewReader(views, store, 2, nil) // answers the latest two events only
	q := &fakeQueue{}
	rec := trace.NewRecorder(q, reader, c.Now)
	for _, at := range []time.Time{t0.Add(time.Hour), t0.Add(100 * time.Hour)} { // the view, then the detail store
		c.Set(at)
		res, err := rec.Record(t.Context(), []receipt.Receipt{
			{MessageID: "big", Receiver: "r0@x.io", State: push.StateDelivered},
			{MessageID: "big", Receiver: "r9@x.io", State: push.StateDelivered},
		})
		require.NoError(t, err)
		require.Equal(t, 1, res.Recorded, "at %v", at)
		require.Len(t, res.Rejected, 1)
		require.Equal(t, trace.CodeUnknownReceiver, res.Rejected[0].Code)
	}
}
