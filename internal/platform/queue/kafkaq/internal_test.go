package kafkaq

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestPickTier(t *testing.T) {
	tiers := DefaultDelayTiers()
	tests := []struct {
		remaining time.Duration
		want      time.Duration
	}{
		{0, time.Second},
		{300 * time.Millisecond, time.Second},
		{time.Second, time.Second},
		{4 * time.Second, time.Second},
		{5 * time.Second, 5 * time.Second},
		{90 * time.Second, 30 * time.Second},
		{59 * time.Minute, 10 * time.Minute},
		{48 * time.Hour, 6 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.remaining.String(), func(t *testing.T) {
			require.Equal(t, tt.want, pickTier(tiers, tt.remaining))
		})
	}
}

func TestToTierNeverExitsAfterDue(t *testing.T) {
	q := &Queue{cfg: Config{DelayTiers: DefaultDelayTiers()}, ensured: map[string]bool{}}
	now := time.Unix(1_700_000_000, 0)
	for _, d := range []time.Duration{time.Millisecond, 700 * time.Millisecond, 3 * time.Second, 7 * time.Hour} {
		t.Run(d.String(), func(t *testing.T) {
			// Mark every tier as created so toTier makes no broker call.
			for _, tier := range q.cfg.DelayTiers {
				q.ensured[q.tierTopicName(tier)] = true
			}
			rec, err := q.delayRecord(t.Context(), &kgo.Record{Topic: "target"}, now.Add(d), now)
			require.NoError(t, err)
			exit, ok := timeHeader(rec, hdrExit)
			require.True(t, ok)
			require.False(t, exit.After(now.Add(d)), "exit %v after due", exit)
			require.False(t, exit.Before(now))
			target, _ := header(rec, hdrTarget)
			require.Equal(t, "target", target)
		})
	}
}

func TestMetadataRoundTrip(t *testing.T) {
	ps := newPartState(topicPart{"wp_orders", 2})
	entries := []*entry{
		{rec: &kgo.Record{Offset: 10}, attempts: 2},
		{rec: &kgo.Record{Offset: 11}, attempts: 1, settled: true},
		{rec: &kgo.Record{Offset: 12}},
		{rec: &kgo.Record{Offset: 13}, attempts: 1},
	}
	for _, e := range entries {
		ps.add(e)
	}
	ps.advance()
	at, ok := ps.commitPoint()
	require.True(t, ok)
	require.Equal(t, int64(10), at.Offset, "the first unsettled record bounds the commit")

	topic, prior, ok := decodeMeta(ps.metadata())
	require.True(t, ok)
	require.Equal(t, "wp_orders", topic)
	require.Equal(t, map[int64]int{10: 2, 11: 0, 13: 1}, prior, "undelivered records are left out")

	entries[0].settled = true
	ps.advance()
	at, _ = ps.commitPoint()
	require.Equal(t, int64(12), at.Offset, "the contiguous settled prefix moves the commit")

	for _, bad := range []string{"", "v0|t|", "v1||", "v1|t|x:1", "v1|t|1:-1", "v1|t|1"} {
		_, _, ok := decodeMeta(bad)
		require.False(t, ok, bad)
	}
}
