package push

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBusinessID(t *testing.T) {
	sh, err := time.LoadLocation("Asia/Shanghai")
	require.NoError(t, err)
	// 2026-11-29 17:30 UTC is already 30 November in Shanghai.
	at := time.Date(2026, 11, 29, 17, 30, 0, 0, time.UTC)
	require.Equal(t, "2000004220261130", BusinessID(KindRealtime, 42, at, sh))
	require.Equal(t, "1000004220261129", BusinessID(KindScheduled, 42, at, time.UTC))
	require.Len(t, BusinessID(KindRealtime, 123456, at, sh), 16)
}

func TestTopic(t *testing.T) {
	require.Equal(t, "push.email.notice", Topic(ChannelEmail, MsgNotice))
	require.Len(t, Channels(), 10)
	require.Len(t, MsgTypes(), 3)
}

func TestAnchorPacks(t *testing.T) {
	as := make([]Anchor, 2*MaxAnchorsPerMessage+1)
	for i := range as {
		as[i] = Anchor{EventID: strconv.Itoa(i), MessageID: "m", Receiver: "r", State: StateReceived}
	}
	packs, err := EncodeAnchors(as)
	require.NoError(t, err)
	require.Len(t, packs, 3)
	var back []Anchor
	for _, p := range packs {
		got, err := DecodeAnchors(p)
		require.NoError(t, err)
		require.LessOrEqual(t, len(got), MaxAnchorsPerMessage)
		back = append(back, got...)
	}
	require.Equal(t, as, back, "every anchor once, in order")

	one, err := DecodeAnchors([]byte(` {"eventId":"e","messageId":"m","state":"sent"}`))
	require.NoError(t, err)
	require.Equal(t, []Anchor{{EventID: "e", MessageID: "m", State: "sent"}}, one, "a single object still reads")
	_, err = DecodeAnchors([]byte(`[{"eventId":1}]`))
	require.Error(t, err)
	_, err = DecodeAnchors([]byte(`nope`))
	require.Error(t, err)
	packs, err = EncodeAnchors(nil)
	require.NoError(t, err)
	require.Empty(t, packs)
}
