package channel_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/push/channel"
)

func TestPermanent(t *testing.T) {
	base := errors.New("550 no such user")
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "nil", err: nil, want: false},
		{name: "plain", err: base, want: false},
		{name: "permanent", err: channel.Permanent(base), want: true},
		{name: "wrapped permanent", err: fmt.Errorf("send: %w", channel.Permanent(base)), want: true},
		{name: "joined", err: errors.Join(errors.New("x"), channel.Permanent(base)), want: true},
		{name: "context canceled", err: context.Canceled, want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, channel.IsPermanent(tc.err))
		})
	}
	require.NoError(t, channel.Permanent(nil))
	p := channel.Permanent(base)
	require.ErrorIs(t, p, base)
	require.Equal(t, base.Error(), p.Error())
}

// fakeSender proves the interface is small enough to fake in one line.
type fakeSender func(context.Context, channel.Message) (channel.Result, error)

func (f fakeSender) Send(ctx context.Context, m channel.Message) (channel.Result, error) {
	return f(ctx, m)
}

func TestSenderIsFakeable(t *testing.T) {
	var s channel.Sender = fakeSender(func(_ context.Context, m channel.Message) (channel.Result, error) {
		return channel.Result{ProviderID: "p-" + m.MessageID}, nil
	})
	r, err := s.Send(context.Background(), channel.Message{MessageID: "m1"})
	require.NoError(t, err)
	require.Equal(t, "p-m1", r.ProviderID)
}
