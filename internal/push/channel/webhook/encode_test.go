package webhook

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// oddStrings are the inputs where a hand-written JSON encoder usually
// drifts from encoding/json.
var oddStrings = []string{
	"", "plain", `quote " and backslash \`, "<script>&amp;</script>",
	"\x00\x01\x07\b\t\n\v\f\r\x1b\x1f\x7f", "héllo wörld ✓ 日本語 🎉",
	"line\u2028sep\u2029para", "bad utf8 \xff\xfe end", "truncated \xe2\x82",
	"\xed\xa0\x80 surrogate half", "emoji at end 😀", strings.Repeat("ab<", 200),
}

func TestAppendPayloadMatchesEncodingJSON(t *testing.T) {
	times := []time.Time{
		time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC),
		time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC),
		time.Date(2026, 3, 4, 5, 6, 7, 120000000, time.UTC),
		{},
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
	}
	for _, s := range oddStrings {
		for _, at := range times {
			p := payload{MessageID: s, BusinessID: s + "b", TemplateID: -42, Receiver: "r" + s, Text: s, SentAt: at}
			assertSameAsJSON(t, p)
		}
	}
	assertSameAsJSON(t, payload{})
	assertSameAsJSON(t, payload{TemplateID: 1 << 62})
}

func TestAppendPayloadFallsBackOutsideJSONYears(t *testing.T) {
	p := payload{MessageID: "m", SentAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	_, want := json.Marshal(&p)
	require.Error(t, want)
	_, err := appendPayload(nil, p)
	require.Error(t, err)
}

func FuzzAppendPayload(f *testing.F) {
	for _, s := range oddStrings {
		f.Add(s, int64(7), int64(1772600767123456789))
	}
	f.Fuzz(func(t *testing.T, s string, tmpl, nanos int64) {
		p := payload{MessageID: s, BusinessID: s, TemplateID: tmpl, Receiver: s, Text: s,
			SentAt: time.Unix(0, nanos).UTC()}
		assertSameAsJSON(t, p)
	})
}

func assertSameAsJSON(t *testing.T, p payload) {
	t.Helper()
	want, err := json.Marshal(p)
	require.NoError(t, err)
	got, err := appendPayload([]byte("prefix"), p)
	require.NoError(t, err)
	require.Equal(t, "prefix"+string(want), string(got))
}
