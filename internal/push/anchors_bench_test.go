package push

import (
	"strconv"
	"testing"
	"time"
)

// benchPacks returns the two kinds of trace-topic message a batch send of
// 10 messages × 10 receivers makes: the access layer's pack of received
// receiver sets, and the handler's pack of sent anchors.
func benchPacks() (received, sent []byte) {
	at := time.Date(2026, 3, 1, 9, 0, 0, 123456789, time.UTC)
	var p Packer
	var anchors []Anchor
	for m := range 10 {
		id := "01JBENCH" + strconv.Itoa(1_000_000_000+m)
		set := ReceiverSet{MessageID: id, BusinessID: "2000004220260301", State: StateReceived, At: at}
		for r := range 10 {
			rcv := "user" + strconv.Itoa(m*7919+r*104729) + "@example.com"
			set.Receivers = append(set.Receivers, rcv)
			anchors = append(anchors, Anchor{EventID: id + ":" + rcv + ":sent:1", MessageID: id, BusinessID: set.BusinessID,
				Receiver: rcv, State: StateSent, At: at.Add(time.Millisecond), Detail: "provider id 0123456789"})
		}
		p.Add(id, set.AppendJSON(nil))
	}
	packs, err := PackAnchors(anchors)
	if err != nil {
		panic(err)
	}
	return p.Packs()[0].Value, packs[0].Value
}

// BenchmarkDecodeAnchors decodes one realistic pack per op: "received" is
// 10 receiver sets of 10 receivers, "sent" 100 plain anchors; anchors/s
// counts what DecodeAnchors returns.
func BenchmarkDecodeAnchors(b *testing.B) {
	received, sent := benchPacks()
	for _, tc := range []struct {
		name string
		pack []byte
	}{{"received", received}, {"sent", sent}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.pack)))
			n := 0
			for b.Loop() {
				as, err := DecodeAnchors(tc.pack)
				if err != nil || len(as) != 100 {
					b.Fatalf("%d anchors: %v", len(as), err)
				}
				n += len(as)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "anchors/s")
		})
	}
}
