package inbox_test

import (
	"fmt"
	"testing"

	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
	"github.com/waypost/waypost/internal/push/channel"
	"github.com/waypost/waypost/internal/push/channel/inbox"
)

// BenchmarkSend stores one new message per op through the sender, with a
// live subscriber on the receiver.
func BenchmarkSend(b *testing.B) {
	for _, d := range sqltest.Dialects() {
		b.Run(string(d), func(b *testing.B) {
			db := sqltest.New(b, d, inbox.Migrations())
			st := inbox.NewStore(db)
			hub, err := inbox.NewHub(st, inbox.HubConfig{PollEvery: -1, Buffer: 1 << 20}, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer hub.Close()
			sub, err := hub.Subscribe("bench")
			if err != nil {
				b.Fatal(err)
			}
			defer sub.Close()
			s := inbox.NewSender(st, hub)
			n := 0
			for b.Loop() {
				n++
				if _, err := s.Send(b.Context(), channel.Message{MessageID: fmt.Sprintf("m%d", n), Receiver: "bench", Text: "hello"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
