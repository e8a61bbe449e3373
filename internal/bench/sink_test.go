package bench

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/push/channel/webhook"
)

// post sends one webhook to the sink, signed with secret unless it is "".
func post(t *testing.T, url, secret, messageID, receiver string, now time.Time) int {
	t.Helper()
	body := `{"messageId":"` + messageID + `","receiver":"` + receiver + `","text":"x"}`
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	if secret != "" {
		ts := strconv.FormatInt(now.Unix(), 10)
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(ts + "." + body))
		req.Header.Set(webhook.HeaderTimestamp, ts)
		req.Header.Set(webhook.HeaderSignature, "v1="+hex.EncodeToString(mac.Sum(nil)))
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func TestSinkVerifiesAndCounts(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	now := start
	s := NewSink("s3cret", func() time.Time { return now })
	require.NoError(t, s.Start("127.0.0.1:0"))
	defer func() { require.NoError(t, s.Close(context.Background())) }()

	s.Expect("m1", start)
	now = start.Add(200 * time.Millisecond)
	require.Equal(t, http.StatusNoContent, post(t, s.URL(), "s3cret", "m1", "r1", now))
	now = start.Add(400 * time.Millisecond)
	require.Equal(t, http.StatusNoContent, post(t, s.URL(), "s3cret", "m1", "r2", now))
	require.Equal(t, http.StatusNoContent, post(t, s.URL(), "s3cret", "m1", "r2", now), "a redelivery is acknowledged")
	require.Equal(t, http.StatusUnauthorized, post(t, s.URL(), "other", "m2", "r1", now))
	require.Equal(t, http.StatusUnauthorized, post(t, s.URL(), "", "m2", "r1", now))
	now = start.Add(time.Second)
	require.Equal(t, http.StatusNoContent, post(t, s.URL(), "s3cret", "m3", "r1", now), "arrivals before Expect still correlate")
	s.Expect("m3", start.Add(500*time.Millisecond))

	d := s.Report(start, 4)
	require.Equal(t, &Delivery{Expected: 4, Delivered: 3, BadSignature: 2, Duplicates: 1, Window: time.Second,
		EndToEnd: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 500 * time.Millisecond}}, d)
	require.InDelta(t, 3.0, d.PerSecond(), 1e-9)
}

func TestSinkWithoutSecretCounts(t *testing.T) {
	s := NewSink("", nil)
	require.NoError(t, s.Start("127.0.0.1:0"))
	defer func() { require.NoError(t, s.Close(context.Background())) }()
	require.Equal(t, http.StatusNoContent, post(t, s.URL(), "", "m1", "r1", time.Now()))
	require.Equal(t, http.StatusNoContent, post(t, s.URL(), "any", "m2", "r1", time.Now()))
	resp, err := http.Post(s.URL(), "application/json", strings.NewReader("not json"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Equal(t, 2, s.Delivered())
}

func TestSinkWait(t *testing.T) {
	s := NewSink("", nil)
	require.NoError(t, s.Start("127.0.0.1:0"))
	defer func() { require.NoError(t, s.Close(context.Background())) }()
	go func() {
		for i := range 3 {
			body := `{"messageId":"m` + strconv.Itoa(i) + `","receiver":"r"}`
			if resp, err := http.Post(s.URL(), "application/json", strings.NewReader(body)); err == nil {
				resp.Body.Close()
			}
		}
	}()
	s.Wait(context.Background(), 3, 10*time.Second)
	require.Equal(t, 3, s.Delivered(), "returns once the expected count arrived")

	s.Wait(context.Background(), 4, 20*time.Millisecond) // the drain timeout ends a stalled wait
	require.Equal(t, 3, s.Delivered())
}
