package handler_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/fakeclock"
	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/channel"
	"github.com/waypost/waypost/internal/push/handler"
	"github.com/waypost/waypost/internal/push/rules"
)

var shanghai = mustZone("Asia/Shanghai")

func mustZone(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

// night is 02:00 in Shanghai: inside the default quiet window, and in the
// past, so a task delayed to 09:00 is due at once.
var night = time.Date(2026, 3, 2, 2, 0, 0, 0, shanghai)

// ruleTask is a notice of template 7 in Shanghai, created at now.
func ruleTask(id string, now time.Time, receivers ...string) push.Task {
	t := task(id, push.ChannelEmail, push.MsgNotice, receivers...)
	t.TemplateID, t.TimeZone, t.Quiet, t.CreatedAt = 7, "Asia/Shanghai", push.QuietNone, now
	t.Text = "your parcel is on its way" // the same content in every task
	return t
}

// TestStageAnchors takes a task through the pipeline with one rule set to
// refuse it and checks the anchors each stage records, that nothing refused
// reaches the sender, and the stage's metric.
func TestStageAnchors(t *testing.T) {
	errBounce := errors.New("mailbox does not exist")
	cases := []struct {
		name     string
		settings map[string]string
		tasks    func(now time.Time) []push.Task // sent one after the other; the last is checked
		script   func(m channel.Message, call int) error
		want     map[string][]string // receiver → states of the last task
		sends    int                 // sender calls for the last task
		stage    string              // metric stage_receivers_total{stage, result}
		result   string
		count    float64
	}{
		{
			name:  "every rule passes",
			tasks: func(now time.Time) []push.Task { return []push.Task{ruleTask("m1", now, "a", "b")} },
			want:  map[string][]string{"a": {push.StateSent}, "b": {push.StateSent}}, sends: 2,
			stage: handler.StageLimit, result: "pass", count: 2,
		},
		{
			name: "expired",
			tasks: func(now time.Time) []push.Task {
				t := ruleTask("m1", now.Add(-6*time.Minute), "a", "b")
				t.MsgType = push.MsgAuthCode // 5 minutes by default
				return []push.Task{t}
			},
			want:  map[string][]string{"a": {push.StateSendFailed}, "b": {push.StateSendFailed}},
			stage: handler.StageExpiry, result: push.StateSendFailed, count: 2,
		},
		{
			name:     "discarded",
			settings: map[string]string{rules.NameDiscard: `{"templates":[3,7]}`},
			tasks:    func(now time.Time) []push.Task { return []push.Task{ruleTask("m1", now, "a")} },
			want:     map[string][]string{"a": {push.StateDiscarded}},
			stage:    handler.StageDiscard, result: push.StateDiscarded, count: 1,
		},
		{
			name: "quiet drop",
			tasks: func(now time.Time) []push.Task {
				t := ruleTask("m1", now, "a")
				t.Quiet = push.QuietDrop
				return []push.Task{t}
			},
			want:  map[string][]string{"a": {push.StateQuietDropped}},
			stage: handler.StageQuiet, result: push.StateQuietDropped, count: 1,
		},
		{
			// The copy is due at once (09:00 that day has passed in real
			// time) while the handler's clock still says 02:00: only the
			// marker keeps it from being delayed again.
			name: "quiet delay, then sent once due",
			tasks: func(now time.Time) []push.Task {
				t := ruleTask("m1", now, "a")
				t.Quiet = push.QuietDelay
				return []push.Task{t}
			},
			want: map[string][]string{"a": {push.StateQuietDelayed, push.StateSent}}, sends: 1,
			stage: handler.StageQuiet, result: push.StateQuietDelayed, count: 1,
		},
		{
			name: "content duplicate",
			tasks: func(now time.Time) []push.Task {
				return []push.Task{ruleTask("m0", now, "a", "b"), ruleTask("m1", now, "a", "c")}
			},
			want: map[string][]string{"a": {push.StateContentDeduplicated}, "c": {push.StateSent}}, sends: 1,
			stage: handler.StageDedup, result: push.StateContentDeduplicated, count: 1,
		},
		{
			name:     "frequency cap",
			settings: map[string]string{rules.NameDedup: `{"deduplication_20":{"num":1}}`},
			tasks: func(now time.Time) []push.Task {
				other := ruleTask("m0", now, "a")
				other.Text = "another text"
				return []push.Task{other, ruleTask("m1", now, "a", "b")}
			},
			want: map[string][]string{"a": {push.StateFrequencyCapped}, "b": {push.StateSent}}, sends: 1,
			stage: handler.StageDedup, result: push.StateFrequencyCapped, count: 1,
		},
		{
			name:     "not whitelisted",
			settings: map[string]string{rules.NameWhitelist: `{"enabled":true,"receivers":["a"]}`},
			tasks:    func(now time.Time) []push.Task { return []push.Task{ruleTask("m1", now, "a", "b")} },
			want:     map[string][]string{"a": {push.StateSent}, "b": {push.StateNotWhitelisted}}, sends: 1,
			stage: handler.StageWhitelist, result: push.StateNotWhitelisted, count: 1,
		},
		{
			// Refusals between kept receivers: every kept one still sends.
			name:     "not whitelisted, interleaved",
			settings: map[string]string{rules.NameWhitelist: `{"enabled":true,"receivers":["a","c"]}`},
			tasks:    func(now time.Time) []push.Task { return []push.Task{ruleTask("m1", now, "b", "a", "d", "c")} },
			want: map[string][]string{"a": {push.StateSent}, "b": {push.StateNotWhitelisted},
				"c": {push.StateSent}, "d": {push.StateNotWhitelisted}}, sends: 2,
			stage: handler.StageWhitelist, result: push.StateNotWhitelisted, count: 2,
		},
		{
			// Two receivers an hour: the first two are sent, the task is
			// handed back for the rest and nothing is dropped.
			name: "rate limit grants part",
			settings: map[string]string{rules.NameLimits: `{"accounts":{"acc":{"mode":"receivers","rate":2,"per":"1h",
				"burst":2,"maxWait":"1s"}}}`},
			tasks: func(now time.Time) []push.Task { return []push.Task{ruleTask("m1", now, "a", "b", "c", "d")} },
			want:  map[string][]string{"a": {push.StateSent}, "b": {push.StateSent}}, sends: 2,
			stage: handler.StageLimit, result: "handed_back", count: 4,
		},
		{
			name: "permanent send failure",
			tasks: func(now time.Time) []push.Task {
				return []push.Task{ruleTask("m1", now, "a")}
			},
			script: func(channel.Message, int) error { return channel.Permanent(errBounce) },
			want:   map[string][]string{"a": {push.StateSendFailed}}, sends: 1,
			stage: handler.StageLimit, result: "pass", count: 1,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			snd := newFakeSender()
			snd.script = tc.script
			l := newLive(t)
			for name, v := range tc.settings {
				l.set(t, name, v)
			}
			e := startRules(t, night, staticResolver{push.ChannelEmail: snd}, rulesOpts{live: l})
			tasks := tc.tasks(e.clock.Now())
			for _, task := range tasks {
				publish(t, e.q, task)
				require.Eventually(t, func() bool {
					n := 0
					for _, st := range e.trace.states(task.MessageID) {
						n += len(st)
					}
					return n > 0 && (task.MessageID != "m1" || n == countStates(tc.want))
				}, waitFor, tick, "anchors of %s", task.MessageID)
			}
			last := tasks[len(tasks)-1]
			e.stop(t)
			require.Equal(t, tc.want, e.trace.states(last.MessageID))
			calls := 0
			for _, r := range last.Receivers {
				calls += snd.count(last.MessageID, r)
			}
			require.Equal(t, tc.sends, calls, "sends of %s", last.MessageID)
			require.InDelta(t, tc.count, metric(t, e.prom, "waypost_push_handler_stage_receivers_total",
				map[string]string{"stage": tc.stage, "result": tc.result}), 0)
		})
	}
}

func countStates(m map[string][]string) int {
	n := 0
	for _, s := range m {
		n += len(s)
	}
	return n
}

// TestStageOrder checks what the order of the stages decides: a content
// duplicate of a discarded template is discarded (discard runs first), and
// the daily cap counts only messages that passed content dedup.
func TestStageOrder(t *testing.T) {
	snd := newFakeSender()
	l := newLive(t)
	l.set(t, rules.NameDedup, `{"deduplication_20":{"num":2}}`)
	e := startRules(t, night, staticResolver{push.ChannelEmail: snd}, rulesOpts{live: l})
	now := e.clock.Now()
	withText := func(id, text string) push.Task {
		t := ruleTask(id, now, "a")
		t.Text = text
		return t
	}
	steps := []struct {
		task    push.Task
		discard string
		want    string
	}{
		{task: withText("m1", "X"), want: push.StateSent},                // cap count 1
		{task: withText("m2", "X"), want: push.StateContentDeduplicated}, // not counted
		{task: withText("m3", "X"), discard: `{"templates":[7]}`, want: push.StateDiscarded},
		{task: withText("m4", "Y"), discard: `{"templates":[]}`, want: push.StateSent}, // cap count 2
		{task: withText("m5", "Z"), want: push.StateFrequencyCapped},
	}
	for _, s := range steps {
		if s.discard != "" {
			l.set(t, rules.NameDiscard, s.discard)
		}
		publish(t, e.q, s.task)
		require.Eventually(t, func() bool { return len(e.trace.states(s.task.MessageID)["a"]) > 0 }, waitFor, tick)
		require.Equal(t, []string{s.want}, e.trace.states(s.task.MessageID)["a"], s.task.MessageID)
	}
	require.Equal(t, 2, snd.total())
}

// TestExpiryAfterPartialSend: a task sent to some receivers, then handed
// back and redelivered past its TTL, fails only the receivers still open.
func TestExpiryAfterPartialSend(t *testing.T) {
	snd := newFakeSender()
	c := fakeclock.New(night)
	snd.script = func(m channel.Message, call int) error {
		if m.Receiver == "b" && call == 1 {
			c.Add(2 * time.Minute) // the retry comes after the TTL
			return errors.New("connection reset")
		}
		return nil
	}
	l := newLive(t)
	l.set(t, rules.NameTTL, `{"notice":"1h"}`)
	e := startRules(t, night, staticResolver{push.ChannelEmail: snd}, rulesOpts{live: l, clock: c})
	publish(t, e.q, ruleTask("m1", night.Add(-59*time.Minute), "a", "b"))

	require.Eventually(t, func() bool { return len(e.trace.states("m1")) == 2 }, waitFor, tick)
	e.stop(t)
	require.Equal(t, map[string][]string{"a": {push.StateSent}, "b": {push.StateSendFailed}}, e.trace.states("m1"))
	require.Equal(t, handler.ReasonExpired, e.trace.find("m1", push.StateSendFailed)["b"].Detail)
	require.Equal(t, 1, snd.count("m1", "a"))
	require.Equal(t, 1, snd.count("m1", "b"), "not retried once expired")
}

// TestRetryCountsFailuresNotDeliveries: deliveries the rate limiter hands
// back do not use up a task's retries.
func TestRetryCountsFailuresNotDeliveries(t *testing.T) {
	snd := newFakeSender()
	snd.script = func(m channel.Message, call int) error {
		if call < 3 {
			return errors.New("503 service unavailable")
		}
		return nil
	}
	l := newLive(t)
	l.set(t, rules.NameRetry, `{"channels":{"email":{"maxAttempts":3,"backoff":"10ms"}}}`)
	// The first delivery is handed back by the limiter (one unit per 300ms,
	// none left) before any send.
	l.set(t, rules.NameLimits, `{"accounts":{"acc":{"rate":1,"per":"300ms","maxWait":"1ms"}}}`)
	e := startRules(t, night, staticResolver{push.ChannelEmail: snd}, rulesOpts{live: l})
	publish(t, e.q, ruleTask("m0", night, "z"), ruleTask("m1", night, "a"))

	require.Eventually(t, func() bool { return len(e.trace.find("m1", push.StateSent)) == 1 }, waitFor, tick)
	e.stop(t)
	require.Equal(t, 3, snd.count("m1", "a"), "two failures, then sent on the third try")
	require.Positive(t, metric(t, e.prom, "waypost_push_handler_stage_receivers_total",
		map[string]string{"stage": handler.StageLimit, "result": "handed_back"}), "the limiter handed deliveries back")
	require.Empty(t, e.trace.find("m1", push.StateSendFailed))
}

// TestStageMetricsPerTask publishes tasks until every stage has seen one
// and checks each stage records its time.
func TestStageMetricsPerTask(t *testing.T) {
	snd := newFakeSender()
	e := startRules(t, night, staticResolver{push.ChannelEmail: snd}, rulesOpts{})
	for i := range 3 {
		publish(t, e.q, ruleTask(fmt.Sprintf("m%d", i), night, fmt.Sprintf("r%d", i)))
	}
	require.Eventually(t, func() bool { return snd.total() == 3 }, waitFor, tick)
	mfs, err := e.prom.Gather()
	require.NoError(t, err)
	counts := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() == "waypost_push_handler_stage_seconds" {
			for _, m := range mf.GetMetric() {
				counts[m.GetLabel()[0].GetValue()] = m.GetHistogram().GetSampleCount()
			}
		}
	}
	for _, s := range []string{handler.StageExpiry, handler.StageDiscard, handler.StageQuiet, handler.StageDedup,
		handler.StageWhitelist, handler.StageLimit} {
		require.Equal(t, uint64(3), counts[s], s)
	}
}
