package access

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestIDsSortAndNeverRepeat(t *testing.T) {
	at := time.UnixMilli(1_790_000_000_000)
	g := newIDGen(func() time.Time { return at })
	ids := g.next(1000) // same millisecond: the random part increments
	at = at.Add(time.Millisecond)
	ids = append(ids, g.next(10)...)
	at = at.Add(-time.Second) // a clock step back keeps the order
	ids = append(ids, g.next(10)...)
	require.True(t, slices.IsSorted(ids))
	require.Len(t, slices.Compact(slices.Clone(ids)), len(ids))
	for _, id := range ids {
		require.Len(t, id, 26)
		require.Regexp(t, `^[0-7][0-9A-HJKMNP-TV-Z]{25}$`, id)
	}
	require.Equal(t, encodeULID(1_790_000_000_000, 0, 0)[:10], ids[0][:10], "the time prefix leads")
}

func TestEncodeULID(t *testing.T) {
	require.Equal(t, "00000000000000000000000000", encodeULID(0, 0, 0))
	require.Equal(t, "7ZZZZZZZZZZZZZZZZZZZZZZZZZ", encodeULID(1<<48-1, 1<<16-1, 1<<64-1))
	require.Equal(t, "00000000010000000000000001", encodeULID(1, 0, 1))
}
