package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
	"github.com/waypost/waypost/internal/platform/testenv"
	"github.com/waypost/waypost/internal/push/channel/webhook"
)

// e2eWait bounds every wait for a delivery in the end-to-end suite.
const e2eWait = 15 * time.Second

// TestPushEndToEnd sends one message per channel (email, webhook, inbox)
// through `waypost up` over HTTP and checks that each arrives where it
// should: a real SMTP server, a webhook receiver that verifies the signature
// and an SSE client on the inbox stream. It runs once per engine set.
func TestPushEndToEnd(t *testing.T) {
	tests := []struct {
		name string
		env  func(t *testing.T) []string
	}{
		{"embedded", func(*testing.T) []string { return nil }},
		{"kafka+redis+mariadb", func(t *testing.T) []string {
			env := []string{"WAYPOST_QUEUE_BACKEND=kafka", "WAYPOST_QUEUE_KAFKA_BROKERS=" + startKafka(t)}
			env = append(env, redisEnv(t)...)
			return append(env, "WAYPOST_SQL_DSN="+sqltest.NewDSN(t, sqldb.MySQL))
		}},
		{"nats+redis+postgres", func(t *testing.T) []string {
			env := natsEnv(t)
			env = append(env, redisEnv(t)...)
			return append(env, "WAYPOST_SQL_DSN="+sqltest.NewDSN(t, sqldb.Postgres))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := append(tt.env(t), "WAYPOST_BOOTSTRAP_API_KEY="+testKey, "WAYPOST_PUSH_EGRESS_ALLOW=127.0.0.0/8")
			runPushEndToEnd(t, env)
		})
	}
}

// runPushEndToEnd is one pass of the suite against a process started with env.
func runPushEndToEnd(t *testing.T, env []string) {
	smtpBE := &mailSink{}
	smtpPort := startSMTP(t, smtpBE)
	const secret = "e2e-webhook-signing-secret"
	hooks := &hookSink{secret: secret}
	hookSrv := httptest.NewServer(hooks)
	t.Cleanup(hookSrv.Close)

	cmd, base, _ := startUp(t, t.TempDir(), env...)

	emailAcc := postJSON(t, base+"/api/v1/channel-accounts", fmt.Sprintf(`{"channel":"email","name":"e2e mail",
		"config":{"host":"127.0.0.1","port":%d,"from":"Waypost <noreply@example.com>","tls":"none"}}`, smtpPort),
		http.StatusCreated, testKey)["id"].(string)
	hookAcc := postJSON(t, base+"/api/v1/channel-accounts", fmt.Sprintf(`{"channel":"webhook","name":"e2e hook",
		"config":{"url":%q,"secret":%q}}`, hookSrv.URL+"/in", secret), http.StatusCreated, testKey)["id"].(string)

	emailTmpl := approvedTemplate(t, base, `{"name":"e2e email","channel":"email","msgType":"notice","accountId":"`+emailAcc+`",
		"content":{"subject":"Order {{.order}} shipped","body":"<p>Hi {{.name}}, order {{.order}} is on its way.</p>","html":true}}`)
	hookTmpl := approvedTemplate(t, base, `{"name":"e2e hook","channel":"webhook","msgType":"notice","accountId":"`+hookAcc+`",
		"content":{"text":"Parcel {{.order}} arrived"}}`)
	inboxTmpl := approvedTemplate(t, base, `{"name":"e2e inbox","channel":"inbox","msgType":"notice",
		"content":{"text":"Hello {{.name}}, your inbox works"}}`)

	const receiver = "user-e2e"
	events := openSSE(t, base+"/api/v1/inbox/"+receiver+"/stream")

	mailID := sendOne(t, base, emailTmpl, "ana@example.com", `{"name":"Ana","order":"A-17"}`)
	hookID := sendOne(t, base, hookTmpl, "hook-user-1", `{"order":"B-42"}`)
	inboxID := sendOne(t, base, inboxTmpl, receiver, `{"name":"Ana"}`)

	t.Run("email", func(t *testing.T) {
		var mails []receivedMail
		require.Eventually(t, func() bool { mails = smtpBE.received(); return len(mails) > 0 },
			e2eWait, 20*time.Millisecond, "the mail reaches the SMTP server")
		require.Len(t, mails, 1)
		m := mails[0]
		require.Equal(t, []string{"ana@example.com"}, m.To)
		require.Equal(t, "noreply@example.com", m.From)
		msg, err := mail.ReadMessage(strings.NewReader(string(m.Data)))
		require.NoError(t, err)
		subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
		require.NoError(t, err)
		require.Equal(t, "Order A-17 shipped", subject)
		require.Contains(t, msg.Header.Get("To"), "ana@example.com")
		require.Equal(t, mailID, msg.Header.Get("X-Waypost-Message-Id"))
		parts := mailParts(t, msg)
		require.Contains(t, parts, "text/plain")
		require.Contains(t, parts, "text/html")
		require.Contains(t, parts["text/plain"], "Hi Ana, order A-17 is on its way.")
		require.NotContains(t, parts["text/plain"], "<p>")
		require.Contains(t, parts["text/html"], "<p>Hi Ana, order A-17 is on its way.</p>")
	})

	t.Run("webhook", func(t *testing.T) {
		var bodies [][]byte
		require.Eventually(t, func() bool { bodies = hooks.verified(); return len(bodies) > 0 },
			e2eWait, 20*time.Millisecond, "the webhook arrives")
		require.Zero(t, hooks.failed(), "every webhook request verifies")
		var got struct{ MessageID, Receiver, Text string }
		require.NoError(t, json.Unmarshal(bodies[0], &got))
		require.Equal(t, hookID, got.MessageID)
		require.Equal(t, "hook-user-1", got.Receiver)
		require.Equal(t, "Parcel B-42 arrived", got.Text)
	})

	t.Run("inbox", func(t *testing.T) {
		deadline := time.After(e2eWait)
		for {
			select {
			case ev, ok := <-events:
				require.True(t, ok, "the SSE stream ended before the message")
				if ev.name != "message" {
					continue
				}
				var got struct{ MessageID, Text string }
				require.NoError(t, json.Unmarshal([]byte(ev.data), &got))
				require.Equal(t, inboxID, got.MessageID)
				require.Equal(t, "Hello Ana, your inbox works", got.Text)
				return
			case <-deadline:
				t.Fatal("no message event on the inbox stream")
			}
		}
	})

	t.Run("trace", func(t *testing.T) {
		for _, id := range []string{mailID, hookID, inboxID} {
			var states map[string]int
			require.Eventually(t, func() bool {
				states = traceStates(t, base, id)
				return states["received"] == 1 && states["sent"] == 1
			}, e2eWait, 50*time.Millisecond, "trace of %s shows received and sent", id)
		}
	})

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "exit status after SIGTERM")
	case <-time.After(20 * time.Second):
		t.Fatal("did not exit within 20s of SIGTERM")
	}
}

// approvedTemplate creates a template from body, submits and approves it and
// returns its id.
func approvedTemplate(t *testing.T, base, body string) string {
	t.Helper()
	id := fmt.Sprint(postJSON(t, base+"/api/v1/templates", body, http.StatusCreated, testKey)["id"])
	postJSON(t, base+"/api/v1/templates/"+id+"/submit", `{}`, http.StatusOK, testKey)
	require.Equal(t, "approved", postJSON(t, base+"/api/v1/templates/"+id+"/approve", `{}`, http.StatusOK, testKey)["status"])
	return id
}

// sendOne sends one message to one receiver and returns its messageId.
func sendOne(t *testing.T, base, tmpl, receiver, vars string) string {
	t.Helper()
	out := postJSON(t, base+"/api/v1/send", `{"templateId":`+tmpl+`,"messages":[{"receivers":["`+receiver+`"],"variables":`+vars+`}]}`,
		http.StatusAccepted, testKey)
	msgs := out["messages"].([]any)
	require.Len(t, msgs, 1)
	m := msgs[0].(map[string]any)
	require.Equal(t, []any{receiver}, m["receivers"], "%v", out)
	return m["messageId"].(string)
}

// traceStates counts the trace events of one message by state.
func traceStates(t *testing.T, base, id string) map[string]int {
	t.Helper()
	resp := get(t, base+"/api/v1/trace/messages/"+id, testKey)
	defer resp.Body.Close()
	var tr struct{ Events []struct{ State string } }
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&tr) != nil {
		return nil
	}
	states := map[string]int{}
	for _, e := range tr.Events {
		states[e.State]++
	}
	return states
}

// sseEvent is one Server-Sent Event.
type sseEvent struct{ name, data string }

// openSSE connects to an SSE stream, waits for its ": connected" comment (so
// the subscription is live before anything is sent) and returns its events.
func openSSE(t *testing.T, url string) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Type"), "text/event-stream")

	connected := make(chan struct{})
	events := make(chan sseEvent, 16)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == ": connected":
				close(connected)
			case strings.HasPrefix(line, "event:"):
				ev.name = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
			case strings.HasPrefix(line, "data:"):
				ev.data += strings.TrimSpace(strings.TrimPrefix(line, "data:"))
			case line == "" && ev.name != "":
				select {
				case events <- ev:
				case <-ctx.Done():
					return
				}
				ev = sseEvent{}
			}
		}
	}()
	select {
	case <-connected:
	case <-time.After(e2eWait):
		t.Fatal("the SSE stream did not say it was connected")
	}
	return events
}

// mailParts returns the decoded body of each part of msg by media type; a
// single-part message gives one entry.
func mailParts(t *testing.T, msg *mail.Message) map[string]string {
	t.Helper()
	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	require.NoError(t, err)
	parts := map[string]string{}
	if !strings.HasPrefix(mediaType, "multipart/") {
		parts[mediaType] = decodePart(t, msg.Body, msg.Header.Get("Content-Transfer-Encoding"))
		return parts
	}
	require.Equal(t, "multipart/alternative", mediaType)
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return parts
		}
		require.NoError(t, err)
		pt, _, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
		require.NoError(t, err)
		// NextPart decodes quoted-printable itself and hides the header.
		parts[pt] = decodePart(t, p, p.Header.Get("Content-Transfer-Encoding"))
	}
}

func decodePart(t *testing.T, r io.Reader, encoding string) string {
	t.Helper()
	if strings.EqualFold(encoding, "base64") {
		r = base64.NewDecoder(base64.StdEncoding, r)
	}
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return string(b)
}

// startKafka starts an in-process kfake cluster on 127.0.0.1 and returns its
// broker address. When the test ends the cluster must hold the push topics,
// proving the process used it.
func startKafka(t *testing.T) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	require.NoError(t, err)
	addrs := c.ListenAddrs()
	t.Cleanup(func() {
		defer c.Close()
		cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
		if err != nil {
			t.Errorf("kafka client: %v", err)
			return
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		topics, err := kadm.NewClient(cl).ListTopics(ctx)
		if err != nil {
			t.Errorf("list kafka topics: %v", err)
			return
		}
		if !topics.Has("waypost.push.email.notice") {
			t.Errorf("no topic waypost.push.email.notice: the process did not use the test's Kafka (topics %v)", topics.Names())
		}
	})
	return strings.Join(addrs, ",")
}

// redisEnv checks Redis is reachable and returns the env selecting it with a
// fresh key prefix, whose keys are deleted when the test ends (and must
// exist then, proving the process used them).
func redisEnv(t *testing.T) []string {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr()})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		testenv.Unavailable(t, "redis", err)
	}
	prefix := testenv.UniqueName("wp_e2e_") + ":"
	t.Cleanup(func() {
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := rdb.Scan(ctx, 0, prefix+"*", 100).Iterator()
		n := 0
		for iter.Next(ctx) {
			n++
			rdb.Del(ctx, iter.Val())
		}
		if n == 0 {
			t.Errorf("no keys under %s: the process did not use the test's Redis prefix", prefix)
		}
	})
	return []string{"WAYPOST_KV_BACKEND=redis", "WAYPOST_KV_REDIS_ADDR=" + testenv.RedisAddr(), "WAYPOST_KV_REDIS_PREFIX=" + prefix}
}

// natsEnv checks NATS is reachable and returns the env selecting it with a
// fresh stream prefix, whose streams are deleted when the test ends (and
// must exist then, proving the process used them).
func natsEnv(t *testing.T) []string {
	t.Helper()
	nc, err := nats.Connect(testenv.NATSURL(), nats.Timeout(5*time.Second))
	if err != nil {
		testenv.Unavailable(t, "nats", err)
	}
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	prefix := strings.ToUpper(testenv.UniqueName("WP_E2E_")) + "_"
	t.Cleanup(func() {
		defer nc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		names := js.StreamNames(ctx)
		var doomed []string
		for n := range names.Name() {
			if strings.HasPrefix(n, prefix) {
				doomed = append(doomed, n)
			}
		}
		if len(doomed) == 0 {
			t.Errorf("no streams named %s*: the process did not use the test's NATS prefix", prefix)
		}
		for _, n := range doomed {
			_ = js.DeleteStream(ctx, n)
		}
	})
	return []string{"WAYPOST_QUEUE_BACKEND=nats", "WAYPOST_QUEUE_NATS_URL=" + testenv.NATSURL(), "WAYPOST_QUEUE_NATS_STREAM_PREFIX=" + prefix}
}

// receivedMail is one mail the test SMTP server accepted.
type receivedMail struct {
	From string
	To   []string
	Data []byte
}

// mailSink is an SMTP backend that accepts every mail and records it.
type mailSink struct {
	mu    sync.Mutex
	mails []receivedMail
}

func (b *mailSink) NewSession(*smtp.Conn) (smtp.Session, error) { return &mailSession{be: b}, nil }

func (b *mailSink) received() []receivedMail {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]receivedMail(nil), b.mails...)
}

type mailSession struct {
	be   *mailSink
	from string
	to   []string
}

func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error { s.from = from; return nil }

func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *mailSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.be.mu.Lock()
	defer s.be.mu.Unlock()
	s.be.mails = append(s.be.mails, receivedMail{From: s.from, To: s.to, Data: data})
	return nil
}

func (s *mailSession) Reset() { s.from, s.to = "", nil }

func (s *mailSession) Logout() error { return nil }

// startSMTP runs a plain SMTP server on 127.0.0.1:0 for the test's lifetime
// and returns its port.
func startSMTP(t *testing.T, be *mailSink) int {
	t.Helper()
	srv := smtp.NewServer(be)
	srv.Domain = "localhost"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			t.Errorf("smtp serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		// Close races with Serve registering l, so close it ourselves too.
		_ = l.Close()
		<-done
	})
	return l.Addr().(*net.TCPAddr).Port
}

// hookSink is a webhook receiver that verifies every request's signature,
// keeping the verified bodies and counting the requests that fail.
type hookSink struct {
	secret string

	mu     sync.Mutex
	bodies [][]byte
	bad    int
}

func (h *hookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		err = webhook.Verify(h.secret, r.Header, body, time.Now(), 5*time.Minute)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil || r.Method != http.MethodPost {
		h.bad++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	h.bodies = append(h.bodies, body)
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookSink) verified() [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([][]byte(nil), h.bodies...)
}

func (h *hookSink) failed() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bad
}
