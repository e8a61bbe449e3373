package trace_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/waypost/waypost/internal/platform/fakeclock"
	"github.com/waypost/waypost/internal/platform/kv/memkv"
	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/push"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is 09:00 UTC on the day the tests' businessIds name.
var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

const biz = "2000004220260301" // realtime template 42 on 2026-03-01

func anchor(event, msg, rcv, state string, at time.Time) push.Anchor {
	return push.Anchor{EventID: event, MessageID: msg, BusinessID: biz, Receiver: rcv, State: state, At: at}
}

func newKV(t testing.TB, c *fakeclock.Clock) *memkv.Store {
	t.Helper()
	s := memkv.New(memkv.WithClock(c.Now), memkv.WithSweepInterval(0))
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// publishOne publishes each anchor as its own message, as the access layer does.
func publishOne(t testing.TB, q queue.Queue, anchors ...push.Anchor) {
	t.Helper()
	msgs := make([]queue.Message, 0, len(anchors))
	for _, a := range anchors {
		v, err := json.Marshal(a)
		require.NoError(t, err)
		msgs = append(msgs, queue.Message{Topic: push.TraceTopic, Key: a.MessageID, Value: v})
	}
	require.NoError(t, q.Publish(context.Background(), msgs...))
}

// publishPacked publishes anchors as packed arrays of size each, as the
// handler's emitter does.
func publishPacked(t testing.TB, q queue.Queue, size int, anchors ...push.Anchor) {
	t.Helper()
	var msgs []queue.Message
	for from := 0; from < len(anchors); from += size {
		part := anchors[from:min(from+size, len(anchors))]
		v, err := json.Marshal(part)
		require.NoError(t, err)
		msgs = append(msgs, queue.Message{Topic: push.TraceTopic, Key: part[0].MessageID, Value: v})
	}
	require.NoError(t, q.Publish(context.Background(), msgs...))
}

func jsonArray(anchors []push.Anchor) ([]byte, error) { return json.Marshal(anchors) }

// publishSets publishes received anchors as the access layer does: one
// push.ReceiverSet per message (its anchors in eventId order), packed.
func publishSets(t testing.TB, q queue.Queue, received ...push.Anchor) {
	t.Helper()
	var p push.Packer
	for from := 0; from < len(received); {
		to := from + 1
		for to < len(received) && received[to].MessageID == received[from].MessageID {
			to++
		}
		a := received[from]
		set := push.ReceiverSet{MessageID: a.MessageID, BusinessID: a.BusinessID, State: a.State, At: a.At}
		for _, b := range received[from:to] {
			require.Equal(t, a.At, b.At, "one set per message: one instant")
			set.Receivers = append(set.Receivers, b.Receiver)
		}
		p.Add(a.MessageID, set.AppendJSON(nil))
		from = to
	}
	var msgs []queue.Message
	for _, pk := range p.Packs() {
		msgs = append(msgs, queue.Message{Topic: push.TraceTopic, Key: pk.Key, Value: pk.Value})
	}
	require.NoError(t, q.Publish(context.Background(), msgs...))
}
