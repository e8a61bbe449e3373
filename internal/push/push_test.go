package push

import (
	"strconv"
	"strings"
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
	// Anchors of ~1 KiB: a few hundred fill one pack.
	as := make([]Anchor, 600)
	for i := range as {
		as[i] = Anchor{EventID: strconv.Itoa(i), MessageID: "m" + strconv.Itoa(i), Receiver: "r", State: StateReceived,
			Detail: strings.Repeat("d", 1000)}
	}
	packs, err := PackAnchors(as)
	require.NoError(t, err)
	require.Greater(t, len(packs), 1, "600 KiB does not fit one pack")
	var back []Anchor
	for _, p := range packs {
		require.LessOrEqual(t, len(p.Value), MaxAnchorPackBytes)
		got, err := DecodeAnchors(p.Value)
		require.NoError(t, err)
		require.Equal(t, got[0].MessageID, p.Key, "a pack is keyed by its first anchor's message")
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
	packs, err = PackAnchors(nil)
	require.NoError(t, err)
	require.Empty(t, packs)
}
