package dedup

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/push"
)

func intp[T any](v T) *T { return &v }

func TestParseSettings(t *testing.T) {
	tests := []struct {
		name string
		json string
		want Settings
	}{
		{"the seed's JSON is the default", `{"deduplication_10":{"num":1,"time":300},"deduplication_20":{"num":5}}`, DefaultSettings()},
		{"empty object is the default", `{}`, DefaultSettings()},
		{"a field left out keeps its default", `{"deduplication_10":{"num":3}}`, Settings{
			Content: ContentRule{Num: 3, Time: 300}, Frequency: FrequencyRule{Num: 5}, FrequencyExempt: []push.MsgType{push.MsgAuthCode}}},
		{"exempt list replaced", `{"frequencyExempt":[]}`, Settings{
			Content: ContentRule{Num: 1, Time: 300}, Frequency: FrequencyRule{Num: 5}, FrequencyExempt: []push.MsgType{}}},
		{"overrides inherit fields from the top level", `{
			"deduplication_10":{"num":1,"time":600},
			"msgTypes":{"marketing":{"deduplication_10":{"num":2},"deduplication_20":{"num":1}},"notice":{"deduplication_20":null}}}`,
			Settings{
				Content: ContentRule{Num: 1, Time: 600}, Frequency: FrequencyRule{Num: 5}, FrequencyExempt: []push.MsgType{push.MsgAuthCode},
				MsgTypes: map[push.MsgType]Override{
					push.MsgMarketing: {Content: &ContentRule{Num: 2, Time: 600}, Frequency: &FrequencyRule{Num: 1}},
					push.MsgNotice:    {},
				},
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSettings([]byte(tc.json))
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestParseSettingsErrors(t *testing.T) {
	tests := []struct {
		name string
		json string
		want []string // every one must appear in the error
	}{
		{"unknown top-level key", `{"deduplication_30":{"num":1}}`, []string{`unknown field "deduplication_30"`}},
		{"unknown rule key", `{"deduplication_20":{"num":1,"time":60}}`, []string{"deduplication_20", `unknown field "time"`}},
		{"wrong type", `{"deduplication_10":{"num":"one"}}`, []string{"deduplication_10"}},
		{"negative num", `{"deduplication_10":{"num":-1}}`, []string{"deduplication_10.num: -1 not in 0..10000"}},
		{"zero time", `{"deduplication_10":{"num":1,"time":0}}`, []string{"deduplication_10.time: 0 not in 1..2592000 seconds"}},
		{"time too long", `{"deduplication_10":{"time":2592001}}`, []string{"deduplication_10.time: 2592001 not in 1..2592000"}},
		{"cap too high", `{"deduplication_20":{"num":10001}}`, []string{"deduplication_20.num: 10001 not in 0..10000"}},
		{"unknown exempt type", `{"frequencyExempt":["otp"]}`, []string{`frequencyExempt[0]: unknown message type "otp"`}},
		{"exempt twice", `{"frequencyExempt":["auth_code","auth_code"]}`, []string{`frequencyExempt[1]: "auth_code" listed twice`}},
		{"unknown override type", `{"msgTypes":{"promo":{}}}`, []string{`msgTypes.promo: unknown message type "promo"`}},
		{"capping an exempt type", `{"msgTypes":{"auth_code":{"deduplication_20":{"num":3}}}}`,
			[]string{`msgTypes.auth_code.deduplication_20: "auth_code" is in frequencyExempt; remove it there to cap it`}},
		{"bad override, all errors reported", `{"deduplication_20":{"num":-2},"msgTypes":{"marketing":{"deduplication_10":{"time":-5}}}}`,
			[]string{"deduplication_20.num: -2", "msgTypes.marketing.deduplication_10.time: -5"}},
		{"trailing data", `{} []`, []string{"after top-level value"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSettings([]byte(tc.json))
			require.ErrorIs(t, err, ErrInvalidSettings)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestSettingsRoundTrip(t *testing.T) {
	for _, s := range []Settings{
		DefaultSettings(),
		{Content: ContentRule{Num: 2, Time: 60}},
		{Frequency: FrequencyRule{Num: 3}, FrequencyExempt: []push.MsgType{push.MsgAuthCode, push.MsgNotice},
			MsgTypes: map[push.MsgType]Override{push.MsgMarketing: {Frequency: intp(FrequencyRule{Num: 1})}}},
	} {
		b, err := json.Marshal(s)
		require.NoError(t, err)
		got, err := ParseSettings(b)
		require.NoError(t, err, string(b))
		if s.FrequencyExempt == nil {
			s.FrequencyExempt = []push.MsgType{}
		}
		require.Equal(t, s, got, string(b))
	}
	b, err := json.Marshal(DefaultSettings())
	require.NoError(t, err)
	require.JSONEq(t, `{"deduplication_10":{"num":1,"time":300},"deduplication_20":{"num":5},"frequencyExempt":["auth_code"]}`, string(b))
}

func TestResolve(t *testing.T) {
	s := DefaultSettings()
	s.MsgTypes = map[push.MsgType]Override{push.MsgMarketing: {Content: &ContentRule{Num: 0, Time: 300}, Frequency: &FrequencyRule{Num: 2}}}
	r := resolve(s)
	require.Equal(t, rules{contentNum: 1, contentWindow: 300 * time.Second, frequencyNum: 5}, r.For(push.MsgNotice))
	require.Equal(t, rules{contentNum: 1, contentWindow: 300 * time.Second}, r.For(push.MsgAuthCode), "exempt")
	require.Equal(t, rules{contentWindow: 300 * time.Second, frequencyNum: 2}, r.For(push.MsgMarketing))
	require.Equal(t, r.def, r.For("unknown"), "an unknown type gets the top level")
}
