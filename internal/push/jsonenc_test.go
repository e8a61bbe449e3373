package push

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// tricky strings: escapes, HTML, control characters, invalid UTF-8, the
// JavaScript line separators and plain multi-byte text.
var tricky = []string{"", "plain", `quote " and \ backslash`, "<b>&amp;</b>", "tab\tnew\nline\rret", "back\bspace form\ffeed",
	"\x00\x01\x1f\x7f", "bad \xff utf8 \xc3", "sep \u2028 \u2029", "中文 émoji 🎉", "+8613800138000"}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range tricky {
		want, err := json.Marshal(s)
		require.NoError(t, err)
		require.Equal(t, string(want), string(AppendJSONString(nil, s)), "%q", s)
	}
	all := strings.Join(tricky, "")
	want, _ := json.Marshal(all)
	require.Equal(t, string(want), string(AppendJSONString([]byte("x"), all))[1:], "appends, does not overwrite")
}

func TestTaskAppendJSONMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.FixedZone("x", 8*3600))
	tasks := []Task{
		{},
		{MessageID: "m", BusinessID: "2000000120260301", TemplateID: 1, TemplateVersion: 3, Channel: ChannelSMS,
			MsgType: MsgAuthCode, Quiet: QuietNone, TimeZone: "UTC", Receivers: []string{"+8613800138000"},
			Text: "Your code is 1234", CreatedAt: at},
		{MessageID: "m2", BusinessID: "b", TemplateID: -5, Channel: ChannelEmail, MsgType: MsgNotice,
			AccountID: "acc<1>", Quiet: QuietDelay, TimeZone: "Asia/Shanghai", Receivers: []string{},
			Subject: tricky[2], Text: tricky[3], HTML: tricky[6], BizID: tricky[7], CreatedAt: at.UTC(), Retry: 2},
	}
	for _, s := range tricky {
		tasks = append(tasks, Task{MessageID: s, Receivers: tricky, Text: s, Subject: s, HTML: s, BizID: s, AccountID: s,
			TimeZone: s, CreatedAt: at})
	}
	for _, task := range tasks {
		want, err := json.Marshal(task)
		require.NoError(t, err)
		require.Equal(t, string(want), string(task.AppendJSON(nil)))
	}
}

func TestReceiverSet(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 0, 0, 5, time.UTC)
	set := ReceiverSet{MessageID: "m1", BusinessID: "2000000120260301", State: StateReceived, At: at,
		Receivers: []string{"a@x.io", "b <x>", "\xff"}}
	want, err := json.Marshal(set)
	require.NoError(t, err)
	require.Equal(t, string(want), string(set.AppendJSON(nil)), "byte for byte json.Marshal")

	var p Packer
	p.Add("m1", set.AppendJSON(nil))
	sent, _ := json.Marshal(Anchor{EventID: "m1.sent.0", MessageID: "m1", Receiver: "a@x.io", State: StateSent, At: at})
	p.Add("m1", sent)
	p.Add("m2", ReceiverSet{MessageID: "m2", State: StateReceived, At: at}.AppendJSON(nil))
	packs := p.Packs()
	require.Len(t, packs, 1)
	require.Equal(t, "m1", packs[0].Key)
	got, err := DecodeAnchors(packs[0].Value)
	require.NoError(t, err)
	require.Equal(t, []Anchor{
		{EventID: "m1.received.0", MessageID: "m1", BusinessID: "2000000120260301", Receiver: "a@x.io", State: StateReceived, At: at},
		{EventID: "m1.received.1", MessageID: "m1", BusinessID: "2000000120260301", Receiver: "b <x>", State: StateReceived, At: at},
		{EventID: "m1.received.2", MessageID: "m1", BusinessID: "2000000120260301", Receiver: "\ufffd", State: StateReceived, At: at},
		{EventID: "m1.sent.0", MessageID: "m1", Receiver: "a@x.io", State: StateSent, At: at},
	}, got, "a set expands in order, beside plain anchors; an empty set adds nothing")
	require.Equal(t, set.Anchors()[:2], got[:2])

	alone, err := DecodeAnchors(set.AppendJSON(nil))
	require.NoError(t, err)
	require.Len(t, alone, 3, "a set also reads as a message of its own")
}

func TestPackerCutsAtTheBound(t *testing.T) {
	var p Packer
	item := []byte(`{"eventId":"` + strings.Repeat("x", 1000) + `"}`)
	for range 600 {
		p.Add("k", item)
	}
	p.Add("big", []byte(`{"eventId":"`+strings.Repeat("y", MaxAnchorPackBytes)+`"}`))
	packs := p.Packs()
	require.Greater(t, len(packs), 2)
	total := 0
	for _, pk := range packs[:len(packs)-1] {
		require.LessOrEqual(t, len(pk.Value), MaxAnchorPackBytes)
		as, err := DecodeAnchors(pk.Value)
		require.NoError(t, err)
		total += len(as)
	}
	require.Equal(t, 600, total)
	require.Equal(t, "big", packs[len(packs)-1].Key, "an oversized item goes alone")
	require.Empty(t, p.Packs(), "Packs resets")
}
