package push

import (
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
