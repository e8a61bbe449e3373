package trace

import (
	"math/bits"
	"strconv"
	"time"

	"github.com/waypost/waypost/internal/platform/kv"
	"github.com/waypost/waypost/internal/push"
)

// batch builds the kv requests of one Write: per list (a message's, a
// receiver's day) one ListPushRequest, whose values are cut from one
// buffer holding every event once, and per anchor with a businessId one
// OnceIncrement. The keys are built once per list, not per anchor.
func (v *Views) batch(anchors []push.Anchor, now time.Time) ([]kv.ListPushRequest, []kv.OnceIncrement) {
	vals := encodeViewEvents(anchors)

	// Which lists each anchor goes to: its message's, and its receiver's
	// day unless that day is already over (that list is gone; its queries
	// go to the detail store).
	type rcvDay struct {
		rcv string
		day int64
	}
	msgList := make(map[string]int32, len(anchors)/2)
	rcvList := make(map[rcvDay]int32, len(anchors))
	to := make([]int32, 2*len(anchors)) // per anchor: message list, receiver list or -1
	reqs := make([]kv.ListPushRequest, 0, len(anchors))
	var count []int32
	var start, end time.Time
	for i := range anchors {
		a := &anchors[i]
		l, ok := msgList[a.MessageID]
		if !ok {
			l = int32(len(reqs))
			msgList[a.MessageID] = l
			reqs = append(reqs, kv.ListPushRequest{Key: messageKey(a.MessageID), MaxLen: v.cfg.MessageMaxEvents, TTL: v.cfg.MessageTTL})
			count = append(count, 0)
		}
		to[2*i] = l
		count[l]++
		if a.At.Before(start) || !a.At.Before(end) {
			start, end = dayOf(a.At, v.cfg.Location)
		}
		to[2*i+1] = -1
		if !end.After(now) {
			continue
		}
		k := rcvDay{a.Receiver, start.Unix()}
		l, ok = rcvList[k]
		if !ok {
			l = int32(len(reqs))
			rcvList[k] = l
			reqs = append(reqs, kv.ListPushRequest{Key: receiverKey(a.Receiver, start), MaxLen: v.cfg.ReceiverMaxEvents, TTL: end.Sub(now)})
			count = append(count, 0)
		}
		to[2*i+1] = l
		count[l]++
	}
	// Every list's values in one backing array, each list its own part.
	backing := make([][]byte, 0, len(to))
	for l := range reqs {
		n := len(backing)
		backing = backing[:n+int(count[l])]
		reqs[l].Vals = backing[n:n:len(backing)]
	}
	for i, l := range to {
		if l >= 0 {
			reqs[l].Vals = append(reqs[l].Vals, vals[i/2])
		}
	}
	return reqs, v.increments(anchors)
}

// increments are the counts' requests, one per anchor with a businessId,
// their ids cut from one string.
func (v *Views) increments(anchors []push.Anchor) []kv.OnceIncrement {
	ids := make([]byte, 0, 16*len(anchors))
	for i := range anchors {
		if a := &anchors[i]; a.BusinessID != "" {
			ids = appendOnceID(ids, a.MessageID, a.EventID)
		}
	}
	all := string(ids)
	incrs := make([]kv.OnceIncrement, 0, len(all)/16)
	var bid, key string
	for i := range anchors {
		a := &anchors[i]
		if a.BusinessID == "" {
			continue
		}
		if a.BusinessID != bid {
			bid, key = a.BusinessID, countsKey(a.BusinessID)
		}
		n := 16 * len(incrs)
		incrs = append(incrs, kv.OnceIncrement{Key: key, Field: a.State, Delta: 1,
			TTL: v.cfg.CountsTTL, ID: all[n : n+16], IDTTL: v.cfg.EventIDTTL})
	}
	return incrs
}

// encodeViewEvents encodes every anchor as a viewEvent into one buffer and
// returns the encodings in order, each capped to its own length.
func encodeViewEvents(anchors []push.Anchor) [][]byte {
	size := 0
	for i := range anchors {
		a := &anchors[i]
		size += 64 + len(a.EventID) + len(a.MessageID) + len(a.BusinessID) + len(a.Receiver) + len(a.State) + len(a.Detail)
	}
	buf := make([]byte, 0, size)
	ends := make([]int, len(anchors))
	for i := range anchors {
		buf = appendViewEvent(buf, &anchors[i])
		ends[i] = len(buf)
	}
	// Cut only now: buf may have moved while it grew.
	vals := make([][]byte, len(anchors))
	from := 0
	for i, end := range ends {
		vals[i] = buf[from:end:end]
		from = end
	}
	return vals
}

// appendViewEvent appends a as json.Marshal encodes its viewEvent.
func appendViewEvent(b []byte, a *push.Anchor) []byte {
	b = append(b, `{"e":`...)
	b = push.AppendJSONString(b, a.EventID)
	b = append(b, `,"m":`...)
	b = push.AppendJSONString(b, a.MessageID)
	if a.BusinessID != "" {
		b = append(b, `,"b":`...)
		b = push.AppendJSONString(b, a.BusinessID)
	}
	b = append(b, `,"r":`...)
	b = push.AppendJSONString(b, a.Receiver)
	b = append(b, `,"s":`...)
	b = push.AppendJSONString(b, a.State)
	b = append(b, `,"t":`...)
	b = strconv.AppendInt(b, a.At.UnixMicro(), 10)
	if a.Detail != "" {
		b = append(b, `,"d":`...)
		b = push.AppendJSONString(b, a.Detail)
	}
	return append(b, '}')
}

// appendOnceID appends the compact identity of an event for
// kv.HashIncrOnce: the 128-bit FNV-1a (hash/fnv's New128a) of messageId,
// a zero byte and eventId, the detail store's key. It is hand-written so a
// batch hashes without allocating; a test holds it to hash/fnv, which ids
// already stored were made with.
func appendOnceID(b []byte, msg, ev string) []byte {
	const (
		primeLower = 0x13b
		primeShift = 24
	)
	hi, lo := uint64(0x6c62272e07bb0142), uint64(0x62b821756295c58d)
	step := func(c byte) {
		lo ^= uint64(c)
		h, l := bits.Mul64(primeLower, lo)
		hi = h + lo<<primeShift + primeLower*hi
		lo = l
	}
	for i := 0; i < len(msg); i++ {
		step(msg[i])
	}
	step(0)
	for i := 0; i < len(ev); i++ {
		step(ev[i])
	}
	b = append(b, byte(hi>>56), byte(hi>>48), byte(hi>>40), byte(hi>>32), byte(hi>>24), byte(hi>>16), byte(hi>>8), byte(hi))
	return append(b, byte(lo>>56), byte(lo>>48), byte(lo>>40), byte(lo>>32), byte(lo>>24), byte(lo>>16), byte(lo>>8), byte(lo))
}
