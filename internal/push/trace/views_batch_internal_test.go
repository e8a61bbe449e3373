package trace

import (
	"encoding/json"
	"hash/fnv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/kv"
	"github.com/waypost/waypost/internal/platform/kv/memkv"
	"github.com/waypost/waypost/internal/push"
)

// oddAnchors are anchors with what a JSON encoder must take care of.
func oddAnchors() []push.Anchor {
	at := time.Date(2026, 3, 1, 9, 0, 0, 123456789, time.UTC)
	return []push.Anchor{
		{EventID: "m.received.0", MessageID: "m", BusinessID: "2000004220260301", Receiver: "a@x.io", State: push.StateReceived, At: at},
		{EventID: "e", MessageID: "m", Receiver: "", State: push.StateSent, At: at.Add(-time.Hour), Detail: "x"},
		{EventID: `q"\/<>&`, MessageID: "消息", BusinessID: "b", Receiver: "😀@x.io\u2028\u2029", State: "s",
			At: time.Unix(-5, 0), Detail: "tab\tnl\ncr\rnul\x00bell\x07 bad\xffutf8 é"},
		{EventID: "z", MessageID: "z", State: "s"},
	}
}

func TestAppendViewEventIsJSONMarshal(t *testing.T) {
	for _, a := range oddAnchors() {
		want, err := json.Marshal(viewEvent{EventID: a.EventID, MessageID: a.MessageID, BusinessID: a.BusinessID,
			Receiver: a.Receiver, State: a.State, At: a.At.UnixMicro(), Detail: a.Detail})
		require.NoError(t, err)
		require.Equal(t, string(want), string(appendViewEvent(nil, &a)))
	}
	vals := encodeViewEvents(oddAnchors())
	for i, a := range oddAnchors() {
		require.Equal(t, string(appendViewEvent(nil, &a)), string(vals[i]))
		require.Equal(t, len(vals[i]), cap(vals[i]), "an append to one value must not run into the next")
	}
}

func TestOnceIDIsFNV128a(t *testing.T) {
	for _, a := range oddAnchors() {
		h := fnv.New128a()
		_, _ = h.Write([]byte(a.MessageID))
		_, _ = h.Write([]byte{0})
		_, _ = h.Write([]byte(a.EventID))
		require.Equal(t, h.Sum(nil), appendOnceID(nil, a.MessageID, a.EventID))
	}
	require.Len(t, appendOnceID([]byte("pre"), strings.Repeat("m", 300), ""), 19)
}

// TestBatchRequests: the kv requests of a Write are those of one request
// per anchor and list, grouped by key in order of first use, with
// json.Marshal's values.
func TestBatchRequests(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	store := memkv.New(memkv.WithSweepInterval(0))
	defer func() { require.NoError(t, store.Close()) }()
	v := NewViews(store, ViewConfig{Now: func() time.Time { return now }})
	anchors := oddAnchors()
	anchors = append(anchors, anchors[0], anchors[1])
	anchors[1].At = now.Add(-13 * time.Hour) // the day before: no receiver list
	anchors = append(anchors, push.Anchor{EventID: "n", MessageID: "m", BusinessID: "c", Receiver: "a@x.io", State: push.StateSent,
		At: now.Add(time.Hour)})

	var want []kv.ListPushRequest
	index := map[string]int{}
	add := func(key string, maxLen int, ttl time.Duration, val []byte) {
		i, ok := index[key]
		if !ok {
			i = len(want)
			index[key] = i
			want = append(want, kv.ListPushRequest{Key: key, MaxLen: maxLen, TTL: ttl})
		}
		want[i].Vals = append(want[i].Vals, val)
	}
	var wantIncrs []kv.OnceIncrement
	for _, a := range anchors {
		val, err := json.Marshal(viewEvent{EventID: a.EventID, MessageID: a.MessageID, BusinessID: a.BusinessID,
			Receiver: a.Receiver, State: a.State, At: a.At.UnixMicro(), Detail: a.Detail})
		require.NoError(t, err)
		add("trace:m:"+a.MessageID, DefaultMessageMaxEvents, DefaultMessageTTL, val)
		if start, end := dayOf(a.At, time.UTC); end.After(now) {
			add("trace:r:"+start.Format("20060102")+":"+a.Receiver, DefaultReceiverMaxEvents, end.Sub(now), val)
		}
		if a.BusinessID != "" {
			h := fnv.New128a()
			_, _ = h.Write([]byte(a.MessageID + "\x00" + a.EventID))
			wantIncrs = append(wantIncrs, kv.OnceIncrement{Key: "trace:b:" + a.BusinessID, Field: a.State, Delta: 1,
				TTL: DefaultCountsTTL, ID: string(h.Sum(nil)), IDTTL: DefaultEventIDTTL})
		}
	}
	reqs, incrs := v.batch(anchors, now)
	require.Equal(t, want, reqs)
	require.Equal(t, wantIncrs, incrs)
}
