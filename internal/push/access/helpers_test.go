package access_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/fakeclock"
	"github.com/waypost/waypost/internal/platform/kv/memkv"
	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/access"
)

// fakeSource is an in-memory TemplateSource that counts loads and can block
// or panic on demand.
type fakeSource struct {
	mu    sync.Mutex
	tpls  map[int64]push.Template
	loads atomic.Int64
	gate  chan struct{} // when set, loads wait for it to close
	panic bool
}

func newSource(tpls ...push.Template) *fakeSource {
	s := &fakeSource{tpls: map[int64]push.Template{}}
	for _, t := range tpls {
		s.put(t)
	}
	return s
}

func (s *fakeSource) put(t push.Template) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tpls[t.ID] = t
}

func (s *fakeSource) Template(ctx context.Context, id int64) (push.Template, error) {
	s.loads.Add(1)
	s.mu.Lock()
	gate, p := s.gate, s.panic
	t, ok := s.tpls[id]
	s.mu.Unlock()
	if p {
		panic("source exploded")
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return push.Template{}, ctx.Err()
		}
	}
	if !ok {
		return push.Template{}, fmt.Errorf("template %d: %w", id, push.ErrUnknownTemplate)
	}
	return t, nil
}

// fakeQueue records published batches; it fails when down is set and can
// hold Publish until release is closed.
type fakeQueue struct {
	mu      sync.Mutex
	batches [][]queue.Message
	down    bool
	entered chan struct{}
	release chan struct{}
}

func (q *fakeQueue) EnsureTopic(context.Context, queue.TopicConfig) error { return nil }
func (q *fakeQueue) Ping(context.Context) error                           { return nil }
func (q *fakeQueue) Close(context.Context) error                          { return nil }
func (q *fakeQueue) Subscribe(context.Context, queue.SubscribeConfig, queue.Handler) (queue.Subscription, error) {
	return nil, errors.New("fake queue: subscribe not supported")
}

func (q *fakeQueue) Publish(ctx context.Context, msgs ...queue.Message) error {
	q.mu.Lock()
	entered, release, down := q.entered, q.release, q.down
	q.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if release != nil {
		<-release
	}
	if down {
		return fmt.Errorf("fake queue: %w", queue.ErrUnavailable)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.batches = append(q.batches, msgs)
	return nil
}

func (q *fakeQueue) messages(topic string) []queue.Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []queue.Message
	for _, b := range q.batches {
		for _, m := range b {
			if m.Topic == topic {
				out = append(out, m)
			}
		}
	}
	return out
}

func (q *fakeQueue) tasks(t *testing.T, topic string) []push.Task {
	t.Helper()
	var out []push.Task
	for _, m := range q.messages(topic) {
		var task push.Task
		require.NoError(t, json.Unmarshal(m.Value, &task))
		require.Equal(t, task.MessageID, m.Key)
		out = append(out, task)
	}
	return out
}

func (q *fakeQueue) anchors(t *testing.T) []push.Anchor {
	t.Helper()
	var out []push.Anchor
	for _, m := range q.messages(push.TraceTopic) {
		as, err := push.DecodeAnchors(m.Value)
		require.NoError(t, err)
		require.NotEmpty(t, as)
		require.Equal(t, as[0].MessageID, m.Key, "a pack is keyed by its first message")
		require.LessOrEqual(t, len(m.Value), push.MaxAnchorPackBytes)
		out = append(out, as...)
	}
	return out
}

func emailTemplate(id int64) push.Template {
	return push.Template{
		ID: id, Name: "welcome", Channel: push.ChannelEmail, MsgType: push.MsgNotice, Kind: push.KindRealtime,
		Quiet: push.QuietNone, TimeZone: "Asia/Shanghai", Status: push.StatusApproved, Version: 1,
		Content: push.Content{Subject: "Hi {{.name}}", Body: "<p>Hello {{.name}}</p>", HTML: true},
	}
}

func smsTemplate(id int64) push.Template {
	return push.Template{
		ID: id, Name: "code", Channel: push.ChannelSMS, MsgType: push.MsgAuthCode, Kind: push.KindRealtime,
		Quiet: push.QuietNone, TimeZone: "UTC", Status: push.StatusApproved, Version: 1,
		Content: push.Content{Text: "Your code is {{.code}}"},
	}
}

type env struct {
	h   *access.Handler
	src *fakeSource
	q   queue.Queue
	fq  *fakeQueue
	clk *fakeclock.Clock
	app string
}

// newEnv builds a handler over src and q (a fresh fakeQueue when nil).
func newEnv(t testing.TB, src *fakeSource, q queue.Queue, cfg access.Config) *env {
	t.Helper()
	e := &env{src: src, q: q, clk: fakeclock.New(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)), app: "app1"}
	if q == nil {
		e.fq = &fakeQueue{}
		e.q = e.fq
	}
	store := memkv.New(memkv.WithSweepInterval(0))
	t.Cleanup(func() { _ = store.Close() })
	h, err := access.New(cfg, src, e.q, store, nil, nil,
		access.WithClock(e.clk.Now), access.WithAppID(func(context.Context) string { return e.app }))
	require.NoError(t, err)
	t.Cleanup(h.Close)
	e.h = h
	return e
}

type result struct {
	status   int
	body     []byte
	replayed bool
}

func (r result) code(t testing.TB) string {
	t.Helper()
	var b struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	require.NoError(t, json.Unmarshal(r.body, &b), string(r.body))
	return b.Error.Code
}

func (r result) resp(t testing.TB) access.SendResponse {
	t.Helper()
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))
	var b access.SendResponse
	require.NoError(t, json.Unmarshal(r.body, &b))
	return b
}

// send posts body through a mux as the lead mounts it.
func (e *env) send(body any, key string) result {
	var raw []byte
	switch b := body.(type) {
	case string:
		raw = []byte(b)
	case []byte:
		raw = b
	default:
		raw, _ = json.Marshal(b)
	}
	mux := http.NewServeMux()
	e.h.Register(mux, nil)
	req := httptest.NewRequest(http.MethodPost, "/api/v1/send", bytes.NewReader(raw))
	if key != "" {
		req.Header.Set(access.IdempotencyKeyHeader, key)
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	return result{status: rec.Code, body: rec.Body.Bytes(), replayed: rec.Header().Get(access.ReplayedHeader) == "true"}
}

func msg(vars map[string]any, receivers ...string) access.MessageRequest {
	return access.MessageRequest{Receivers: receivers, Variables: vars}
}

func newRecorder(h http.Handler, method string) int {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, "/api/v1/send", strings.NewReader("{}")))
	return rec.Code
}
