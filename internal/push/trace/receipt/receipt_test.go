package receipt

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/push"
)

func TestValidate(t *testing.T) {
	ok := Receipt{MessageID: "m1", Receiver: "a@x.io", State: push.StateDelivered, At: time.Now(), Detail: "DELIVRD"}
	tests := []struct {
		name   string
		mutate func(*Receipt)
		want   string // "" when valid
	}{
		{"delivered", func(*Receipt) {}, ""},
		{"undelivered without time", func(r *Receipt) { r.State, r.At = push.StateUndelivered, time.Time{} }, ""},
		{"no message", func(r *Receipt) { r.MessageID = "" }, "messageId"},
		{"long message id", func(r *Receipt) { r.MessageID = strings.Repeat("m", 65) }, "messageId"},
		{"no receiver", func(r *Receipt) { r.Receiver = "" }, "receiver"},
		{"other state", func(r *Receipt) { r.State = push.StateSent }, `state must be delivered or undelivered, got "sent"`},
		{"long detail", func(r *Receipt) { r.Detail = strings.Repeat("é", MaxDetail+1) }, "detail"},
		{"detail at the limit", func(r *Receipt) { r.Detail = strings.Repeat("é", MaxDetail) }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ok
			tc.mutate(&r)
			err := r.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalid)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
