package access_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/access"
)

func TestCheckReceiver(t *testing.T) {
	tests := []struct {
		ch    push.Channel
		r     string
		valid bool
	}{
		{push.ChannelEmail, "a@x.io", true},
		{push.ChannelEmail, "first.last+tag@mail.example.co.uk", true},
		{push.ChannelEmail, "u@xn--fiqs8s.cn", true},
		{push.ChannelEmail, "", false},
		{push.ChannelEmail, "plain", false},
		{push.ChannelEmail, "a@localhost", false},
		{push.ChannelEmail, "a@-x.io", false},
		{push.ChannelEmail, "a@x..io", false},
		{push.ChannelEmail, "a@x.123", false},
		{push.ChannelEmail, "A <a@x.io>", false},
		{push.ChannelEmail, " a@x.io", false},
		{push.ChannelEmail, "a@@x.io", false},
		{push.ChannelEmail, strings.Repeat("a", 250) + "@x.io", false},
		{push.ChannelSMS, "13800138000", true},
		{push.ChannelSMS, "+8613800138000", true},
		{push.ChannelSMS, "+14155550100", true},
		{push.ChannelSMS, "+447911123456", true},
		{push.ChannelSMS, "12800138000", false},
		{push.ChannelSMS, "1380013800", false},
		{push.ChannelSMS, "8613800138000", false},
		{push.ChannelSMS, "+0123456789", false},
		{push.ChannelSMS, "+1415555010012345", false},
		{push.ChannelSMS, "138-0013-8000", false},
		{push.ChannelSMS, "", false},
		{push.ChannelInbox, "user-1", true},
		{push.ChannelInbox, "  ", false},
		{push.ChannelInbox, "", false},
		{push.ChannelInbox, "a\nb", false},
		{push.ChannelInbox, strings.Repeat("u", 257), false},
		{push.ChannelWebhook, "https://hooks.example.com/x", true},
		{push.ChannelWebhook, "", false},
		{push.ChannelDingTalkRobot, "robot-1", true},
		{push.ChannelWeComRobot, "", false},
		{push.ChannelAppPush, "device-token", true},
	}
	for _, tt := range tests {
		t.Run(string(tt.ch)+"/"+tt.r, func(t *testing.T) {
			why := access.CheckReceiver(tt.ch, tt.r)
			if tt.valid {
				require.Empty(t, why)
			} else {
				require.NotEmpty(t, why)
			}
		})
	}
}
