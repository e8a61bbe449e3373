package handler_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/channel"
	"github.com/waypost/waypost/internal/push/handler"
)

// sends_total counts each receiver's outcome under its channel: the series
// are resolved once per channel, so this holds them to the right labels.
func TestSendOutcomesCounted(t *testing.T) {
	snd := newFakeSender()
	snd.script = func(m channel.Message, _ int) error {
		if m.Receiver == "r2" {
			return channel.Permanent(errors.New("no such hook"))
		}
		return nil
	}
	q := openQueue(t, t.TempDir())
	ledger := newLedger(t)
	require.NoError(t, ledger.Set(context.Background(), handler.LedgerKey("m1", "r1"), []byte("sent"), time.Hour))
	reg := prometheus.NewRegistry()
	h, err := handler.New(testConfig(), q, ledger, staticResolver{push.ChannelWebhook: snd}, nil, reg)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- h.Run(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, h.Close(ctx))
		require.NoError(t, <-done)
	})
	publish(t, q, task("m1", push.ChannelWebhook, push.MsgNotice, "r1", "r2", "r3", "r4"))

	want := map[string]float64{"sent": 2, "failed": 1, "skipped": 1}
	require.Eventually(t, func() bool { return equalCounts(sendCounts(t, reg), want) }, waitFor, tick)
	require.Equal(t, want, sendCounts(t, reg))
}

// sendCounts returns the non-zero webhook series of sends_total by result.
func sendCounts(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "waypost_push_handler_sends_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if v := m.GetCounter().GetValue(); v != 0 {
				require.Equal(t, "webhook", labels["channel"], "only webhook sends happened")
				out[labels["result"]] = v
			}
		}
	}
	return out
}

func equalCounts(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
