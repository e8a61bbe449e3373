package inbox_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
	"github.com/waypost/waypost/internal/push/channel"
	"github.com/waypost/waypost/internal/push/channel/inbox"
)

// waitFor bounds how long a test waits for an event that must come.
const waitFor = 10 * time.Second

type env struct {
	store  *inbox.Store
	hub    *inbox.Hub
	sender channel.Sender
	srv    *httptest.Server
}

func newEnv(t *testing.T, hubCfg inbox.HubConfig, apiCfg inbox.APIConfig) *env {
	t.Helper()
	db := sqltest.New(t, sqldb.SQLite, inbox.Migrations())
	st := inbox.NewStore(db)
	if hubCfg.PollEvery == 0 {
		hubCfg.PollEvery = -1
	}
	hub, err := inbox.NewHub(st, hubCfg, nil, nil)
	require.NoError(t, err)
	sender, err := inbox.Factory(st, hub)(t.Context(), nil)
	require.NoError(t, err)
	mux := http.NewServeMux()
	inbox.NewAPI(st, hub, apiCfg, nil).Register(mux, func(h http.Handler) http.Handler { return h })
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		hub.Close()
		srv.Close()
	})
	return &env{store: st, hub: hub, sender: sender, srv: srv}
}

func (e *env) send(t *testing.T, receiver, id string) channel.Result {
	t.Helper()
	r, err := e.sender.Send(t.Context(), channel.Message{MessageID: id, Receiver: receiver, Text: "text " + id, BusinessID: "2000000720260301", TemplateID: 7})
	require.NoError(t, err)
	return r
}

func (e *env) do(t *testing.T, method, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, e.srv.URL+path, nil)
	require.NoError(t, err)
	resp, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, body
}

func (e *env) list(t *testing.T, path string) inbox.ListResponse {
	t.Helper()
	code, body := e.do(t, http.MethodGet, path)
	require.Equal(t, http.StatusOK, code, string(body))
	var lr inbox.ListResponse
	require.NoError(t, json.Unmarshal(body, &lr))
	return lr
}

func ids(items []inbox.Item) []string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, it.MessageID)
	}
	return out
}

func TestSenderIdempotent(t *testing.T) {
	e := newEnv(t, inbox.HubConfig{}, inbox.APIConfig{})
	first := e.send(t, "u1", "m1")
	again := e.send(t, "u1", "m1")
	require.Equal(t, first, again)
	require.Len(t, e.list(t, "/api/v1/inbox/u1/messages").Messages, 1)

	_, err := e.sender.Send(t.Context(), channel.Message{MessageID: "m2"})
	require.ErrorIs(t, err, inbox.ErrInvalid)
	require.True(t, channel.IsPermanent(err), "an empty receiver cannot succeed on retry")
}

func TestListAndMarkRead(t *testing.T) {
	e := newEnv(t, inbox.HubConfig{}, inbox.APIConfig{})
	for i := range 5 {
		e.send(t, "alice", fmt.Sprintf("m%d", i))
	}
	e.send(t, "bob", "other")

	p1 := e.list(t, "/api/v1/inbox/alice/messages?limit=2")
	require.Equal(t, []string{"m4", "m3"}, ids(p1.Messages))
	require.NotEmpty(t, p1.NextCursor)
	require.Equal(t, "text m4", p1.Messages[0].Text)
	require.False(t, p1.Messages[0].Read)
	require.False(t, p1.Messages[0].At.IsZero())
	p2 := e.list(t, "/api/v1/inbox/alice/messages?limit=2&cursor="+p1.NextCursor)
	require.Equal(t, []string{"m2", "m1"}, ids(p2.Messages))
	p3 := e.list(t, "/api/v1/inbox/alice/messages?limit=2&cursor="+p2.NextCursor)
	require.Equal(t, []string{"m0"}, ids(p3.Messages))
	require.Empty(t, p3.NextCursor)

	code, _ := e.do(t, http.MethodPost, "/api/v1/inbox/alice/messages/m3/read")
	require.Equal(t, http.StatusNoContent, code)
	all := e.list(t, "/api/v1/inbox/alice/messages")
	require.Equal(t, []bool{false, true, false, false, false}, []bool{
		all.Messages[0].Read, all.Messages[1].Read, all.Messages[2].Read, all.Messages[3].Read, all.Messages[4].Read})
	require.Equal(t, []string{"m4", "m2", "m1", "m0"}, ids(e.list(t, "/api/v1/inbox/alice/messages?unread=1").Messages))

	code, body := e.do(t, http.MethodPost, "/api/v1/inbox/alice/messages/other/read")
	require.Equal(t, http.StatusNotFound, code)
	require.Contains(t, string(body), `"not_found"`)

	code, body = e.do(t, http.MethodPost, "/api/v1/inbox/alice/read-all")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"marked":4}`, string(body))
	require.Empty(t, e.list(t, "/api/v1/inbox/alice/messages?unread=1").Messages)
	require.Equal(t, []string{"other"}, ids(e.list(t, "/api/v1/inbox/bob/messages?unread=1").Messages))

	empty := e.list(t, "/api/v1/inbox/nobody/messages")
	require.NotNil(t, empty.Messages, "an empty inbox lists [] not null")

	for _, q := range []string{"limit=0", "limit=101", "limit=x", "cursor=-1", "cursor=abc"} {
		code, body := e.do(t, http.MethodGet, "/api/v1/inbox/alice/messages?"+q)
		require.Equal(t, http.StatusBadRequest, code, q)
		require.Contains(t, string(body), `"invalid_argument"`)
	}
}

// sseEvent is one parsed Server-Sent Event or comment.
type sseEvent struct {
	ID, Event, Data, Comment string
}

type sseClient struct {
	resp   *http.Response
	events chan sseEvent
}

// openStream connects to receiver's stream and waits for the opening
// comment, after which the server is subscribed.
func (e *env) openStream(t *testing.T, receiver, lastEventID string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/api/v1/inbox/"+receiver+"/stream", nil)
	require.NoError(t, err)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	c := &sseClient{resp: resp, events: make(chan sseEvent, 64)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(c.events)
		r := bufio.NewReader(resp.Body)
		var ev sseEvent
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "":
				c.events <- ev
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
				ev.Comment = strings.TrimSpace(line[1:])
			case strings.HasPrefix(line, "id: "):
				ev.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.Event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.Data = line[6:]
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		_ = resp.Body.Close()
		<-done
	})
	require.Equal(t, "connected", c.next(t).Comment)
	return c
}

func (c *sseClient) next(t *testing.T) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-c.events:
		require.True(t, ok, "stream ended")
		return ev
	case <-time.After(waitFor):
		t.Fatal("no event")
		return sseEvent{}
	}
}

// nextMessage skips heartbeats and decodes the next message event.
func (c *sseClient) nextMessage(t *testing.T) (string, inbox.Item) {
	t.Helper()
	for {
		ev := c.next(t)
		if ev.Comment != "" {
			continue
		}
		require.Equal(t, "message", ev.Event)
		var it inbox.Item
		require.NoError(t, json.Unmarshal([]byte(ev.Data), &it))
		return ev.ID, it
	}
}

// ended reports whether the stream closed.
func (c *sseClient) ended(t *testing.T) {
	t.Helper()
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				return
			}
			require.NotEmpty(t, ev.Comment, "no message expected before the end")
		case <-time.After(waitFor):
			t.Fatal("stream did not end")
		}
	}
}

func TestStreamLiveAndResume(t *testing.T) {
	e := newEnv(t, inbox.HubConfig{}, inbox.APIConfig{})
	e.send(t, "carol", "before")

	c := e.openStream(t, "carol", "")
	e.send(t, "dave", "not-carols")
	r1 := e.send(t, "carol", "live1")
	e.send(t, "carol", "live1") // a redelivery is not streamed again
	e.send(t, "carol", "live2")
	id1, it := c.nextMessage(t)
	require.Equal(t, r1.ProviderID, id1)
	require.Equal(t, "live1", it.MessageID)
	require.Equal(t, "text live1", it.Text)
	require.False(t, it.Read)
	_, it = c.nextMessage(t)
	require.Equal(t, "live2", it.MessageID)

	// The client saw live1 only; resuming from it replays live2, then
	// goes on live.
	e.send(t, "carol", "offline")
	c2 := e.openStream(t, "carol", id1)
	var got []string
	for range 2 {
		_, it := c2.nextMessage(t)
		got = append(got, it.MessageID)
	}
	require.Equal(t, []string{"live2", "offline"}, got)
	e.send(t, "carol", "after")
	_, it = c2.nextMessage(t)
	require.Equal(t, "after", it.MessageID)

	code, _ := e.do(t, http.MethodGet, "/api/v1/inbox/carol/stream?lastEventId=x")
	require.Equal(t, http.StatusBadRequest, code)
}

func TestStreamHeartbeat(t *testing.T) {
	e := newEnv(t, inbox.HubConfig{}, inbox.APIConfig{Heartbeat: 10 * time.Millisecond})
	c := e.openStream(t, "erin", "")
	require.Equal(t, "heartbeat", c.next(t).Comment)
}

func TestCloseEndsStreams(t *testing.T) {
	e := newEnv(t, inbox.HubConfig{}, inbox.APIConfig{})
	c1 := e.openStream(t, "frank", "")
	c2 := e.openStream(t, "grace", "")
	e.hub.Close()
	c1.ended(t)
	c2.ended(t)
	code, body := e.do(t, http.MethodGet, "/api/v1/inbox/frank/stream")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, string(body), `"unavailable"`)
}

func TestSlowSubscriberIsDropped(t *testing.T) {
	e := newEnv(t, inbox.HubConfig{Buffer: 1}, inbox.APIConfig{})
	slow, err := e.hub.Subscribe("heidi")
	require.NoError(t, err)
	defer slow.Close()
	fast, err := e.hub.Subscribe("heidi")
	require.NoError(t, err)
	defer fast.Close()

	e.send(t, "heidi", "a")
	require.Equal(t, "a", (<-fast.C).MessageID)
	e.send(t, "heidi", "b") // slow's buffer is still full: it is dropped, Send is not held up
	require.Equal(t, "b", (<-fast.C).MessageID)

	require.Equal(t, "a", (<-slow.C).MessageID)
	_, open := <-slow.C
	require.False(t, open, "a dropped subscriber's channel is closed")
}

// TestPollAcrossInstances runs two hubs on one store, as two instances
// would: a message sent through one reaches a stream on the other.
func TestPollAcrossInstances(t *testing.T) {
	db := sqltest.New(t, sqldb.SQLite, inbox.Migrations())
	st := inbox.NewStore(db)
	hubA, err := inbox.NewHub(st, inbox.HubConfig{PollEvery: -1}, nil, nil)
	require.NoError(t, err)
	hubB, err := inbox.NewHub(st, inbox.HubConfig{PollEvery: 20 * time.Millisecond}, nil, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- hubB.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()

	sub, err := hubB.Subscribe("ivan")
	require.NoError(t, err)
	defer sub.Close()
	sendA := inbox.NewSender(st, hubA)
	for _, id := range []string{"x1", "x2"} {
		_, err := sendA.Send(t.Context(), channel.Message{MessageID: id, Receiver: "ivan", Text: id})
		require.NoError(t, err)
	}
	var got []string
	for len(got) < 2 {
		select {
		case m := <-sub.C:
			got = append(got, m.MessageID)
		case <-time.After(waitFor):
			t.Fatalf("poll delivered only %v", got)
		}
	}
	require.Equal(t, []string{"x1", "x2"}, got)
	// Later polls look back over the same window but never repeat a message.
	_, err = sendA.Send(t.Context(), channel.Message{MessageID: "x3", Receiver: "ivan", Text: "x3"})
	require.NoError(t, err)
	select {
	case m := <-sub.C:
		require.Equal(t, "x3", m.MessageID)
	case <-time.After(waitFor):
		t.Fatal("x3 not delivered")
	}
}
