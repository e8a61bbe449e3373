package access_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/platform/queue/natsq/natsqtest"
	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/access"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSendErrorCodes(t *testing.T) {
	draft := emailTemplate(2)
	draft.Status = push.StatusPending
	broken := smsTemplate(3)
	broken.Content.Text = "{{.code"
	name := map[string]any{"name": "A"}
	receivers := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = "u@x.io"
		}
		return out
	}
	tests := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"malformed json", `{"templateId":1,`, 400, access.CodeInvalidBody},
		{"not an object", `[1]`, 400, access.CodeInvalidBody},
		{"unknown field", `{"templateId":1,"messages":[{"receivers":["a@x.io"]}],"extra":1}`, 400, access.CodeInvalidBody},
		{"unknown message field", `{"templateId":1,"messages":[{"to":["a@x.io"]}]}`, 400, access.CodeInvalidBody},
		{"trailing data", `{"templateId":1,"messages":[{"receivers":["a@x.io"]}]} {}`, 400, access.CodeInvalidBody},
		{"template missing", `{"messages":[{"receivers":["a@x.io"]}]}`, 400, access.CodeInvalidBody},
		{"messages missing", `{"templateId":1}`, 400, access.CodeInvalidBody},
		{"too many messages", access.SendRequest{TemplateID: 1, Messages: make([]access.MessageRequest, 4)}, 400, access.CodeTooManyMessages},
		{"empty receivers", access.SendRequest{TemplateID: 1, Messages: []access.MessageRequest{msg(name, "a@x.io"), msg(name)}}, 400, access.CodeEmptyReceivers},
		{"too many receivers", access.SendRequest{TemplateID: 1, Messages: []access.MessageRequest{msg(name, receivers(6)...)}}, 400, access.CodeTooManyReceivers},
		{"missing variable", access.SendRequest{TemplateID: 1, Messages: []access.MessageRequest{msg(nil, "a@x.io")}}, 400, access.CodeMissingVariable},
		{"unknown template", access.SendRequest{TemplateID: 99, Messages: []access.MessageRequest{msg(name, "a@x.io")}}, 404, access.CodeUnknownTemplate},
		{"not approved", access.SendRequest{TemplateID: 2, Messages: []access.MessageRequest{msg(name, "a@x.io")}}, 409, access.CodeTemplateNotApproved},
		{"unparsable template", access.SendRequest{TemplateID: 3, Messages: []access.MessageRequest{msg(name, "+8613800138000")}}, 500, access.CodeTemplateInvalid},
		{"payload too large", `{"templateId":1,"messages":[{"receivers":["` + strings.Repeat("a", 2048) + `"]}]}`, 413, access.CodePayloadTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, newSource(emailTemplate(1), draft, broken), nil,
				access.Config{MaxMessages: 3, MaxReceivers: 5, MaxBodyBytes: 1024})
			r := e.send(tt.body, "")
			require.Equal(t, tt.status, r.status, string(r.body))
			require.Equal(t, tt.code, r.code(t))
			require.Empty(t, e.fq.batches, "nothing published on an error")
		})
	}
}

func TestSendMissingVariableNamesIt(t *testing.T) {
	e := newEnv(t, newSource(emailTemplate(1)), nil, access.Config{})
	r := e.send(access.SendRequest{TemplateID: 1, Messages: []access.MessageRequest{
		msg(map[string]any{"name": "A"}, "a@x.io"), msg(map[string]any{"nom": "B"}, "b@x.io"),
	}}, "")
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Contains(t, string(r.body), `messages[1]: missing variable \"name\"`)
}

func TestSendPublishesTasksAndAnchors(t *testing.T) {
	e := newEnv(t, newSource(emailTemplate(7)), nil, access.Config{})
	r := e.send(access.SendRequest{TemplateID: 7, Messages: []access.MessageRequest{
		{Receivers: []string{"a@x.io", "bad", "b@x.io", "a@x.io"}, Variables: map[string]any{"name": "<A&B>"}, BizID: "order-1"},
		{Receivers: []string{"nope", "also nope"}, Variables: map[string]any{"name": "C"}},
	}}, "")
	resp := r.resp(t)
	require.Len(t, resp.Messages, 2)
	m0, m1 := resp.Messages[0], resp.Messages[1]
	require.Len(t, m0.MessageID, 26)
	require.NotEqual(t, m0.MessageID, m1.MessageID)
	require.Equal(t, "2000000720260301", m0.BusinessID)
	require.Equal(t, []string{"a@x.io", "b@x.io"}, m0.Receivers, "valid, deduplicated, in order")
	require.Equal(t, []access.InvalidReceiver{{Receiver: "bad", Reason: "not an email address"}}, m0.Invalid)
	require.Empty(t, m1.Receivers, "all invalid: the message still answers")
	require.Len(t, m1.Invalid, 2)

	require.Len(t, e.fq.batches, 1, "one batch per request")
	tasks := e.fq.tasks(t, push.Topic(push.ChannelEmail, push.MsgNotice))
	require.Len(t, tasks, 1, "no task for a message without valid receivers")
	task := tasks[0]
	require.Equal(t, m0.MessageID, task.MessageID)
	require.Equal(t, m0.BusinessID, task.BusinessID)
	require.Equal(t, []string{"a@x.io", "b@x.io"}, task.Receivers)
	require.Equal(t, "Hi <A&B>", task.Subject, "subject is plain text")
	require.Equal(t, "<p>Hello &lt;A&amp;B&gt;</p>", task.HTML, "HTML body is escaped")
	require.Equal(t, "Hello <A&B>", task.Text)
	require.Equal(t, "order-1", task.BizID)
	require.Equal(t, int64(7), task.TemplateID)
	require.Equal(t, int64(1), task.TemplateVersion)
	require.Equal(t, e.clk.Now(), task.CreatedAt.UTC())

	states := map[string][]string{}
	for _, a := range e.fq.anchors(t) {
		states[a.MessageID+" "+a.State] = append(states[a.MessageID+" "+a.State], a.Receiver)
		require.Equal(t, m0.BusinessID, a.BusinessID)
		require.NotEmpty(t, a.EventID)
	}
	require.Equal(t, map[string][]string{
		m0.MessageID + " received":         {"a@x.io", "b@x.io"},
		m0.MessageID + " invalid_receiver": {"bad"},
		m1.MessageID + " invalid_receiver": {"nope", "also nope"},
	}, states)
}

func TestSendBusinessIDInTemplateZone(t *testing.T) {
	tests := []struct {
		name string
		at   time.Time
		zone string
		want string
	}{
		{"shanghai before its midnight", time.Date(2026, 12, 31, 15, 59, 59, 0, time.UTC), "Asia/Shanghai", "2000004220261231"},
		{"shanghai after its midnight", time.Date(2026, 12, 31, 16, 0, 0, 0, time.UTC), "Asia/Shanghai", "2000004220270101"},
		{"new york still yesterday", time.Date(2027, 1, 1, 3, 0, 0, 0, time.UTC), "America/New_York", "2000004220261231"},
		{"empty zone is UTC", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), "", "2000004220270101"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl := smsTemplate(42)
			tpl.TimeZone = tt.zone
			e := newEnv(t, newSource(tpl), nil, access.Config{})
			e.clk.Set(tt.at)
			resp := e.send(access.SendRequest{TemplateID: 42, Messages: []access.MessageRequest{
				msg(map[string]any{"code": 1234}, "+8613800138000")}}, "").resp(t)
			require.Equal(t, tt.want, resp.Messages[0].BusinessID)
		})
	}
}

func TestSendScheduledKindCode(t *testing.T) {
	tpl := smsTemplate(5)
	tpl.Kind = push.KindScheduled
	e := newEnv(t, newSource(tpl), nil, access.Config{})
	resp := e.send(access.SendRequest{TemplateID: 5, Messages: []access.MessageRequest{
		msg(map[string]any{"code": 12345678}, "13800138000")}}, "").resp(t)
	require.Equal(t, "1000000520260301", resp.Messages[0].BusinessID)
	tasks := e.fq.tasks(t, push.Topic(push.ChannelSMS, push.MsgAuthCode))
	require.Equal(t, "Your code is 12345678", tasks[0].Text, "numbers keep their literal text")
}

func TestSendQueueDown(t *testing.T) {
	e := newEnv(t, newSource(emailTemplate(1)), nil, access.Config{})
	e.fq.down = true
	r := e.send(access.SendRequest{TemplateID: 1, Messages: []access.MessageRequest{
		msg(map[string]any{"name": "A"}, "a@x.io", "bad")}}, "")
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	require.Equal(t, access.CodeQueueUnavailable, r.code(t))
	require.NotContains(t, string(r.body), "messageId")
	require.Empty(t, e.fq.anchors(t), "no anchor claims acceptance")
	require.Empty(t, e.fq.messages(push.Topic(push.ChannelEmail, push.MsgNotice)))
}

func TestSendThroughEmbeddedNATS(t *testing.T) {
	ctx := context.Background()
	q := natsqtest.Embedded(t)

	e := newEnv(t, newSource(smsTemplate(9)), q, access.Config{})
	resp := e.send(access.SendRequest{TemplateID: 9, Messages: []access.MessageRequest{
		msg(map[string]any{"code": "0042"}, "+14155550100", "13800138000"),
		msg(map[string]any{"code": "0043"}, "+8613912345678"),
	}}, "").resp(t)

	got := make(chan push.Task, 4)
	sub, err := q.Subscribe(ctx, queue.SubscribeConfig{Topic: push.Topic(push.ChannelSMS, push.MsgAuthCode), Group: "test"},
		func(ctx context.Context, d *queue.Delivery) {
			var task push.Task
			if json.Unmarshal(d.Value, &task) == nil && d.Key == task.MessageID {
				got <- task
			}
			_ = d.Ack(ctx)
		})
	require.NoError(t, err)
	defer func() { require.NoError(t, sub.Close(context.Background())) }()

	byID := map[string]push.Task{}
	for range 2 {
		select {
		case task := <-got:
			byID[task.MessageID] = task
		case <-time.After(10 * time.Second):
			t.Fatal("tasks not delivered")
		}
	}
	require.Equal(t, []string{"+14155550100", "13800138000"}, byID[resp.Messages[0].MessageID].Receivers)
	require.Equal(t, "Your code is 0042", byID[resp.Messages[0].MessageID].Text)
	require.Equal(t, "Your code is 0043", byID[resp.Messages[1].MessageID].Text)
	require.Equal(t, push.ChannelSMS, byID[resp.Messages[1].MessageID].Channel)
}

func TestRegisterWrapsAndRoutes(t *testing.T) {
	e := newEnv(t, newSource(smsTemplate(1)), nil, access.Config{})
	mux := http.NewServeMux()
	e.h.Register(mux, func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusUnauthorized) })
	})
	for _, method := range []string{http.MethodPost, http.MethodGet} {
		rec := newRecorder(mux, method)
		want := map[string]int{http.MethodPost: http.StatusUnauthorized, http.MethodGet: http.StatusMethodNotAllowed}[method]
		require.Equal(t, want, rec, method)
	}
}

func TestNewRequiresDependencies(t *testing.T) {
	_, err := access.New(access.Config{}, nil, nil, nil, nil, nil)
	require.Error(t, err)
}
