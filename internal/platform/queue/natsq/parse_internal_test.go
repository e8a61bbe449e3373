package natsq

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseAckReply(t *testing.T) {
	cases := []struct {
		name           string
		reply          string
		delivered, seq uint64
		ok             bool
	}{
		{"v1", "$JS.ACK.WAYPOST_t.g.3.42.17.1700000000000000000.5", 3, 42, true},
		{"v2", "$JS.ACK.hub.ACCHASH.WAYPOST_t.g.2.99.50.1700000000000000000.0.abc", 2, 99, true},
		{"not an ack subject", "_INBOX.x.y", 0, 0, false},
		{"too few tokens", "$JS.ACK.s.c.1", 0, 0, false},
		{"ten tokens", "$JS.ACK.a.b.c.d.e.f.g.h", 0, 0, false},
		{"too many tokens", "$JS.ACK.a.b.1.2.3.4.5.6.7.8.9.10", 0, 0, false},
		{"not a number", "$JS.ACK.s.c.x.42.17.1.5", 0, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, s, ok := parseAckReply(c.reply)
			require.Equal(t, c.ok, ok)
			require.Equal(t, c.delivered, d)
			require.Equal(t, c.seq, s)
		})
	}
}
