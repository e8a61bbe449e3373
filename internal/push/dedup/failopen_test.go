package dedup

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/fakeclock"
	"github.com/waypost/waypost/internal/platform/testenv"
	"github.com/waypost/waypost/internal/push"
)

// logSink collects a text handler's lines; the tests log from one goroutine.
type logSink struct{ bytes.Buffer }

func (l *logSink) warnings() []string {
	var out []string
	for line := range strings.Lines(l.String()) {
		if strings.Contains(line, "level=WARN") {
			out = append(out, line)
		}
	}
	return out
}

func TestFailOpenWhenKVErrors(t *testing.T) {
	clock := fakeclock.New(time.Date(2026, 5, 1, 10, 0, 0, 0, shanghai))
	store := &failingKV{Store: backends()[0].new(t, clock)}
	reg := prometheus.NewRegistry()
	var sink logSink
	log := slog.New(slog.NewTextHandler(&sink, nil))
	d, err := New(store, DefaultSettings(), log, reg, WithClock(clock.Now), WithLogEvery(10*time.Second))
	require.NoError(t, err)

	req := Request{MessageID: "m1", TemplateID: 1, Channel: push.ChannelEmail, MsgType: push.MsgNotice,
		Location: shanghai, Content: "x", Receivers: []string{"a", "b", "c"}}
	for range 3 {
		v, err := d.Check(t.Context(), req)
		require.NoError(t, err)
		require.Equal(t, []Verdict{Admit, Admit, Admit}, v, "kv down: every receiver admitted")
	}
	fo := func(stage string) float64 {
		return counterValue(t, reg, "waypost_push_dedup_fail_open_total", map[string]string{"stage": stage})
	}
	require.InDelta(t, 9, fo("content"), 0, "three checks of three receivers")
	require.InDelta(t, 9, fo("frequency"), 0, "content admitted them, so the cap failed open too")
	require.Zero(t, counterValue(t, reg, "waypost_push_dedup_memo_errors_total", map[string]string{"op": "write"}),
		"nothing refused: no memo to write")

	// Three failures (one call deciding both rules, three times) make one warning.
	require.Len(t, sink.warnings(), 1)
	require.Contains(t, sink.warnings()[0], "dedup failing open")
	require.Contains(t, sink.warnings()[0], "stage=content+frequency")

	clock.Add(10 * time.Second)
	req.Redelivered = true // the memo read fails too, then the stages
	_, err = d.Check(t.Context(), req)
	require.NoError(t, err)
	require.Len(t, sink.warnings(), 2, "the next interval logs again")
	require.Contains(t, sink.warnings()[1], "warningsHeldBack=2")
	require.InDelta(t, 1, counterValue(t, reg, "waypost_push_dedup_memo_errors_total", map[string]string{"op": "read"}), 0)
}

func TestCancelledContextIsNotFailOpen(t *testing.T) {
	store := &failingKV{Store: backends()[0].new(t, nil)}
	reg := prometheus.NewRegistry()
	d, err := New(store, DefaultSettings(), nil, reg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = d.Check(ctx, Request{MessageID: "m1", MsgType: push.MsgNotice, Receivers: []string{"a"}})
	require.ErrorIs(t, err, context.Canceled, "the caller is going away: hand the task back")
	require.Zero(t, counterValue(t, reg, "waypost_push_dedup_fail_open_total", map[string]string{"stage": "content"}))
}

// TestFailOpenWhenRedisGoesAway cuts a connected rediskv off from the server.
func TestFailOpenWhenRedisGoesAway(t *testing.T) {
	p := testenv.NewCutProxy(t, testenv.RedisAddr())
	store, _ := newRedisAt(t, p.Addr())
	reg := prometheus.NewRegistry()
	d, err := New(store, DefaultSettings(), nil, reg, WithTimeout(500*time.Millisecond))
	require.NoError(t, err)
	req := Request{MessageID: "m1", TemplateID: 1, Channel: push.ChannelEmail, MsgType: push.MsgNotice,
		Content: "x", Receivers: []string{"a", "b"}}
	v, err := d.Check(t.Context(), req)
	require.NoError(t, err)
	require.Equal(t, []Verdict{Admit, Admit}, v)

	p.Close()
	req.MessageID = "m2" // same content: a working store would refuse it
	v, err = d.Check(t.Context(), req)
	require.NoError(t, err)
	require.Equal(t, []Verdict{Admit, Admit}, v, "Redis gone: admitted")
	require.InDelta(t, 2, counterValue(t, reg, "waypost_push_dedup_fail_open_total", map[string]string{"stage": "content"}), 0)
}
