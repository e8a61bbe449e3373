package natsq_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/platform/queue/natsq"
	"github.com/waypost/waypost/internal/platform/queue/natsq/natsqtest"
	"github.com/waypost/waypost/internal/platform/testenv"
)

func newEmbedded(t *testing.T, reg prometheus.Registerer) *natsq.Queue {
	t.Helper()
	return natsqtest.Open(t, natsq.Config{Embedded: &natsq.EmbeddedConfig{StoreDir: t.TempDir()}}, reg)
}

func TestNewRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  natsq.Config
		want error
	}{
		{"neither URL nor embedded", natsq.Config{}, queue.ErrInvalidArgument},
		{"both URL and embedded", natsq.Config{URL: "nats://127.0.0.1:4222", Embedded: &natsq.EmbeddedConfig{StoreDir: t.TempDir()}}, queue.ErrInvalidArgument},
		{"embedded without store dir", natsq.Config{Embedded: &natsq.EmbeddedConfig{}}, queue.ErrInvalidArgument},
		{"prefix with a dot", natsq.Config{URL: "nats://127.0.0.1:4222", StreamPrefix: "A.B"}, queue.ErrInvalidArgument},
		{"bad listen address", natsq.Config{Embedded: &natsq.EmbeddedConfig{StoreDir: t.TempDir(), Listen: "nowhere"}}, queue.ErrInvalidArgument},
		{"unreachable server", natsq.Config{URL: "nats://127.0.0.1:1"}, queue.ErrUnavailable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := natsq.New(t.Context(), c.cfg, nil, nil)
			require.ErrorIs(t, err, c.want)
		})
	}
}

func TestEmbeddedListens(t *testing.T) {
	q, err := natsq.New(t.Context(), natsq.Config{Embedded: &natsq.EmbeddedConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"}}, nil, nil)
	require.NoError(t, err)
	require.NoError(t, q.Ping(t.Context()))
	require.NoError(t, q.Close(t.Context()))
	require.NoError(t, q.Close(t.Context()), "closing twice is harmless")
}

func TestNamesThatSanitiseAlikeAreRefused(t *testing.T) {
	q := newEmbedded(t, nil)
	topic := testenv.UniqueName("coll")
	require.NoError(t, q.EnsureTopic(t.Context(), queue.TopicConfig{Name: topic + ".a"}))
	require.ErrorIs(t, q.EnsureTopic(t.Context(), queue.TopicConfig{Name: topic + "_a"}), queue.ErrInvalidArgument)

	noop := func(context.Context, *queue.Delivery) {}
	sub, err := q.Subscribe(t.Context(), queue.SubscribeConfig{Topic: topic + ".a", Group: "g.1"}, noop)
	require.NoError(t, err)
	require.NoError(t, sub.Close(t.Context()))
	_, err = q.Subscribe(t.Context(), queue.SubscribeConfig{Topic: topic + ".a", Group: "g_1"}, noop)
	require.ErrorIs(t, err, queue.ErrInvalidArgument)
}

func TestReservedHeadersAreRefused(t *testing.T) {
	q := newEmbedded(t, nil)
	for _, h := range []string{"waypost-key", "Waypost-Anything", "Nats-Msg-Id"} {
		err := q.Publish(t.Context(), queue.Message{Topic: "t", Value: []byte("x"), Headers: map[string]string{h: "v"}})
		require.ErrorIs(t, err, queue.ErrInvalidArgument, h)
	}
}

func TestMetricsCount(t *testing.T) {
	reg := prometheus.NewRegistry()
	q := newEmbedded(t, reg)
	topic := testenv.UniqueName("metrics")
	require.NoError(t, q.Publish(t.Context(),
		queue.Message{Topic: topic, Key: "a", Value: []byte("1")},
		queue.Message{Topic: topic, Key: "b", Value: []byte("2")},
	))
	acked := make(chan struct{}, 2)
	sub, err := q.Subscribe(t.Context(), queue.SubscribeConfig{Topic: topic, Group: "g"}, func(ctx context.Context, d *queue.Delivery) {
		if d.Attempt == 1 {
			if err := d.Nack(ctx, 0); err != nil {
				t.Error(err)
			}
			return
		}
		if err := d.Ack(ctx); err != nil {
			t.Error(err)
		}
		acked <- struct{}{}
	})
	require.NoError(t, err)
	<-acked
	<-acked
	require.NoError(t, sub.Close(t.Context()))

	for name, want := range map[string]float64{
		"published": 2, "delivered": 4, "nacked": 2, "acked": 2, "redelivered": 2,
	} {
		got, err := counter(reg, "waypost_queue_"+name+"_total", topic)
		require.NoError(t, err)
		require.Equal(t, want, got, name)
	}
}

func counter(g prometheus.Gatherer, name, topic string) (float64, error) {
	mfs, err := g.Gather()
	if err != nil {
		return 0, err
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "topic" && l.GetValue() == topic {
					return m.GetCounter().GetValue(), nil
				}
			}
		}
	}
	return 0, nil
}
