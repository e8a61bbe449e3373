package memkv

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/kv"
)

// TestListPushCopiesValues: ListPush and ListPushBatch keep copies, so a
// caller reusing its buffers does not change the lists.
func TestListPushCopiesValues(t *testing.T) {
	ctx := t.Context()
	s := newStore(t, WithSweepInterval(0))
	buf := []byte("abcdef")
	require.NoError(t, s.ListPush(ctx, "l", 0, 0, buf[:2], buf[2:4], buf[4:4]))
	require.NoError(t, s.ListPushBatch(ctx, []kv.ListPushRequest{{Key: "l", Vals: [][]byte{buf[4:]}}, {Key: "m", Vals: [][]byte{buf}}}))
	copy(buf, "XXXXXX")
	got, err := s.ListRange(ctx, "l", 0, -1)
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte("ab"), []byte("cd"), {}, []byte("ef")}, got)
	got, err = s.ListRange(ctx, "m", 0, -1)
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte("abcdef")}, got)
}

// TestListPushBatchOwned: the same lists as ListPushBatch (caps, expiry,
// types), keeping the caller's values, and ranges still copy out.
func TestListPushBatchOwned(t *testing.T) {
	ctx := t.Context()
	s := newStore(t, WithSweepInterval(0))
	vals := [][]byte{[]byte("1"), []byte("2"), []byte("3")}
	require.NoError(t, s.Set(ctx, "str", []byte("x"), 0))
	err := s.ListPushBatchOwned(ctx, []kv.ListPushRequest{
		{Key: "a", MaxLen: 2, TTL: time.Hour, Vals: vals},
		{Key: "str", Vals: vals},
		{Key: "b", Vals: vals[:1]},
	})
	require.ErrorIs(t, err, kv.ErrWrongType, "a failing request does not stop the others")
	got, err := s.ListRange(ctx, "a", 0, -1)
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte("2"), []byte("3")}, got, "capped to the newest")
	got[0][0] = 'X'
	again, err := s.ListRange(ctx, "a", 0, -1)
	require.NoError(t, err)
	require.Equal(t, []byte("2"), again[0], "ranges copy out")
	got, err = s.ListRange(ctx, "b", 0, -1)
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte("1")}, got)
	require.ErrorIs(t, s.ListPushBatchOwned(ctx, []kv.ListPushRequest{{Key: ""}}), kv.ErrInvalidArgument)
}
