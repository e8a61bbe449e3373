package limit

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseSettings(t *testing.T) {
	s, err := ParseSettings([]byte(`{
		"default": {"mode": "receivers", "rate": 500},
		"accounts": {"dingtalk-ops": {"mode": "requests", "rate": 20, "per": "1m", "maxWait": "30s"}}
	}`))
	require.NoError(t, err)
	require.Equal(t, Limit{Mode: ModeRequests, Rate: 20, Per: Duration(time.Minute), Burst: 1, MaxWait: Duration(30 * time.Second)},
		s.For("dingtalk-ops"))
	require.Equal(t, Limit{Mode: ModeReceivers, Rate: 500, Per: Duration(time.Second), Burst: 1, MaxWait: Duration(DefaultMaxWait)},
		s.For("sms-main"), "an account not listed gets the default")
	require.True(t, Settings{}.For("x").Unlimited(), "no default: no limit")
	require.InDelta(t, 1.0/3, s.For("dingtalk-ops").PerSecond(), 1e-9)
	require.Equal(t, 1, s.For("dingtalk-ops").Cost(50), "requests mode: a task costs 1")
	require.Equal(t, 50, s.For("sms-main").Cost(50), "receivers mode: a task costs its receivers")
}

func TestParseSettingsErrors(t *testing.T) {
	tests := []struct {
		name string
		json string
		want []string
	}{
		{"unknown mode", `{"default":{"mode":"bytes","rate":1}}`, []string{`default.mode: "bytes" is not "requests" or "receivers"`}},
		{"negative rate", `{"accounts":{"a":{"rate":-1}}}`, []string{"accounts.a.rate: -1 not in 0..1000000"}},
		{"bad duration", `{"default":{"rate":1,"per":"a minute"}}`, []string{`invalid duration "a minute"`}},
		{"duration not a string", `{"default":{"rate":1,"per":60}}`, []string{"want a duration string"}},
		{"per too long", `{"default":{"rate":1,"per":"48h"}}`, []string{"default.per: 48h0m0s not in (0, 24h0m0s]"}},
		{"maxWait too long", `{"default":{"rate":1,"maxWait":"1h"}}`, []string{"default.maxWait: 1h0m0s"}},
		{"negative burst", `{"default":{"rate":1,"burst":-3}}`, []string{"default.burst: -3"}},
		{"empty account", `{"accounts":{"":{"rate":1}}}`, []string{"empty account id"}},
		{"unknown key", `{"default":{"rate":1,"size":2}}`, []string{`unknown field "size"`}},
		{"every error", `{"accounts":{"a":{"rate":-1},"b":{"burst":-1}}}`, []string{"accounts.a.rate", "accounts.b.burst"}},
		{"trailing", `{} {}`, []string{"trailing data"}},
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

func TestLimitJSONRoundTrip(t *testing.T) {
	l := Limit{Mode: ModeReceivers, Rate: 20, Per: Duration(time.Minute), Burst: 5, MaxWait: Duration(1500 * time.Millisecond)}
	b, err := json.Marshal(l)
	require.NoError(t, err)
	require.JSONEq(t, `{"mode":"receivers","rate":20,"per":"1m0s","burst":5,"maxWait":"1.5s"}`, string(b))
	var got Limit
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, l, got)
	b, err = json.Marshal(Limit{Mode: ModeRequests, Rate: 3})
	require.NoError(t, err)
	require.JSONEq(t, `{"mode":"requests","rate":3}`, string(b), "zero fields left out")
}

func TestWaitTooLongErrorText(t *testing.T) {
	err := error(&WaitTooLongError{Key: "acc", Granted: 2, Requested: 5, RetryAfter: 1234567 * time.Microsecond})
	require.EqualError(t, err, `rate limit "acc": 2 of 5 granted; the rest would wait 1.235s, past the bound`)
	_, ok := RetryAfter(otherError{})
	require.False(t, ok)
}

type otherError struct{}

func (otherError) Error() string { return "canceled" }
