package push

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// requireSameDecode holds DecodeAnchors equal to the encoding/json decoder
// on b, in value and error class, and reports whether the hand-written
// decoder took it.
func requireSameDecode(t *testing.T, b []byte) (fast bool) {
	t.Helper()
	want, wantErr := decodeAnchorsJSON(bytes.TrimSpace(b))
	got, err := DecodeAnchors(b)
	if wantErr != nil {
		require.Error(t, err)
		require.Equal(t, wantErr.Error(), err.Error())
		return false
	}
	require.NoError(t, err)
	require.Equal(t, want, got)
	if trimmed := bytes.TrimSpace(b); len(trimmed) > 0 {
		_, fast = decodeAnchorsFast(trimmed)
	}
	return fast
}

func TestDecodeAnchorsMatchesEncodingJSON(t *testing.T) {
	received, sent := benchPacks()
	tests := []struct {
		name  string
		value string
		fast  bool // the hand-written decoder must take it
	}{
		{"received sets", string(received), true},
		{"sent anchors", string(sent), true},
		{"one anchor", `{"eventId":"e","messageId":"m","state":"sent","at":"2026-03-01T09:00:00Z"}`, true},
		{"one set", `{"messageId":"m","businessId":"b","state":"received","at":"2026-03-01T09:00:00.5+08:00","receivers":["a","b"]}`, true},
		{"set of twelve", `[{"messageId":"m","state":"received","receivers":["0","1","2","3","4","5","6","7","8","9","10","11"]}]`, true},
		{"set with anchor fields", `[{"eventId":"x","receiver":"y","detail":"z","messageId":"m","state":"received","receivers":["a"]}]`, true},
		{"empty set", `{"messageId":"m","state":"received","receivers":[]}`, true},
		{"array of empty sets", `[{"messageId":"m","state":"received","receivers":[]}]`, true},
		{"empty array", ` [ ] `, true},
		{"empty object", `[{}]`, true},
		{"spaces everywhere", "\n[ {\t\"eventId\" : \"e\" ,\r\"messageId\":\"m\"} , {\"receivers\" : [ \"a\" , \"b\" ] } ]\n", true},
		{"unicode", `[{"eventId":"é","messageId":"消息","receiver":"😀@x.io","state":"sent","detail":"Grüße"}]`, true},
		{"unknown state", `{"eventId":"e","messageId":"m","state":"later"}`, true},
		{"repeated keys", `{"eventId":"a","eventId":"b","receivers":["x"],"receivers":["y","z"]}`, true},
		{"mixed", `[{"messageId":"m1","state":"received","receivers":["a","b"]},{"eventId":"e","messageId":"m1","state":"sent"},{"messageId":"m2","state":"received","receivers":["c"]}]`, true},
		{"escapes", `[{"eventId":"a\"b","messageId":"m\\n","receiver":"\u00e9\n","detail":"\ud83d\ude00"}]`, false},
		{"escaped receiver", `[{"messageId":"m","state":"received","receivers":["a\u0041"]}]`, false},
		{"html escapes", `{"eventId":"\u003cb\u003e","messageId":"m"}`, false},
		{"key in other case", `{"EventID":"e","messageId":"m"}`, false},
		{"unknown key", `{"eventId":"e","messageId":"m","extra":{"a":[1,2]}}`, false},
		{"null string", `{"eventId":null,"messageId":"m"}`, false},
		{"null receivers", `{"eventId":"e","messageId":"m","receivers":null}`, false},
		{"null item", `[null,{"eventId":"e"}]`, false},
		{"null", `null`, false},
		{"invalid utf-8", "{\"eventId\":\"a\xffb\",\"messageId\":\"m\"}", false},
		{"number", `[{"eventId":1}]`, false},
		{"bad time", `{"eventId":"e","at":"yesterday"}`, false},
		{"time not a string", `{"eventId":"e","at":12}`, false},
		{"control character", "{\"eventId\":\"a\tb\"}", false},
		{"trailing comma", `[{"eventId":"e"},]`, false},
		{"trailing garbage", `[{"eventId":"e"}] x`, false},
		{"two objects", `{"eventId":"e"}{"eventId":"f"}`, false},
		{"unterminated", `[{"eventId":"e"`, false},
		{"unterminated string", `{"eventId":"e`, false},
		{"garbage", `nope`, false},
		{"only space", `   `, false},
		{"empty", ``, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fast := requireSameDecode(t, []byte(tc.value))
			require.Equal(t, tc.fast, fast, "taken by the hand-written decoder")
		})
	}
}

func TestDecodeAnchorsSets(t *testing.T) {
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	rcvs := make([]string, 105)
	for i := range rcvs {
		rcvs[i] = "r" + strings.Repeat("x", i%3)
	}
	set := ReceiverSet{MessageID: "m", BusinessID: "b", State: StateReceived, At: at, Receivers: rcvs}
	var p Packer
	p.Add("m", set.AppendJSON(nil))
	p.Add("n", ReceiverSet{MessageID: "n", State: StateReceived, At: at, Receivers: []string{"z"}}.AppendJSON(nil))
	got, err := DecodeAnchors(p.Packs()[0].Value)
	require.NoError(t, err)
	require.Equal(t, append(set.Anchors(), Anchor{EventID: "n.received.0", MessageID: "n", Receiver: "z",
		State: StateReceived, At: at}), got)
	require.Equal(t, "m.received.104", got[104].EventID)
}

func TestDigits(t *testing.T) {
	total := 0
	for k := range 1200 {
		require.Equal(t, total, digitsUpTo(k), "digits of 0…%d", k-1)
		require.Equal(t, len(strconv.Itoa(k)), decimalLen(k))
		total += len(strconv.Itoa(k))
	}
}

func TestInternState(t *testing.T) {
	for _, s := range []string{StateReceived, StateInvalidReceiver, StateDiscarded, StateQuietDropped, StateQuietDelayed,
		StateContentDeduplicated, StateFrequencyCapped, StateNotWhitelisted, StateSent, StateSendFailed,
		StateDelivered, StateUndelivered, StateRecalled} {
		copied := string([]byte(s))
		got := internState(copied)
		require.Equal(t, s, got)
		require.Same(t, unsafe.StringData(s), unsafe.StringData(got), "%s is the constant", s)
	}
}

// FuzzDecodeAnchors holds the hand-written decoder to encoding/json on any
// input.
func FuzzDecodeAnchors(f *testing.F) {
	received, sent := benchPacks()
	f.Add(received)
	f.Add(sent)
	f.Add([]byte(`[{"eventId":"a\"b","messageId":"m","receivers":["x","y"]},{}]`))
	f.Add([]byte(`{"EventId":"e","at":"2026-03-01T09:00:00+01:00"}`))
	f.Fuzz(func(t *testing.T, b []byte) { requireSameDecode(t, b) })
}
