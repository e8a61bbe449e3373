package bench

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/waypost/waypost/internal/platform/httpx"
	"github.com/waypost/waypost/internal/push/access"
	"github.com/waypost/waypost/internal/push/client"
)

func TestMain(m *testing.M) {
	// fasthttp's idle-worker cleaner notices a stopped server only after
	// its next sleep (up to 10 s); it holds nothing of the sink.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"))
}

// TestClosedLoopCountsAnswers: every third request is refused with 429;
// the run counts accepted requests, messages and receivers, and errors by
// status and code, and together they match what the server saw.
func TestClosedLoopCountsAnswers(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		if n%3 == 0 {
			httpx.WriteError(w, http.StatusTooManyRequests, "rate_limited", "slow down")
			return
		}
		var req access.SendRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.TemplateID != 7 {
			httpx.WriteError(w, http.StatusBadRequest, "invalid_body", "bad")
			return
		}
		var out access.SendResponse
		for i, m := range req.Messages {
			out.Messages = append(out.Messages, access.MessageResult{MessageID: "m" + string(rune('a'+i)), Receivers: m.Receivers})
		}
		httpx.WriteJSON(w, http.StatusAccepted, out)
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, "wp_k", srv.Client())
	require.NoError(t, err)

	var mu sync.Mutex
	accepted := 0
	g, err := New(Config{TemplateID: 7, Concurrency: 4, Duration: 200 * time.Millisecond, ReceiversPerMessage: 3, MessagesPerRequest: 2}, c,
		WithAccepted(func(string, time.Time) { mu.Lock(); accepted++; mu.Unlock() }))
	require.NoError(t, err)
	res, err := g.Run(context.Background())
	require.NoError(t, err)

	require.Positive(t, res.Accepted)
	require.EqualValues(t, hits.Load(), res.Accepted+res.Errors["429 rate_limited"])
	require.Len(t, res.Errors, 1, "only the refusals are errors: %v", res.Errors)
	require.Positive(t, res.Errors["429 rate_limited"])
	require.Equal(t, 2*res.Accepted, res.Messages)
	require.Equal(t, 6*res.Accepted, res.ReceiverMessages)
	require.Equal(t, res.Messages, accepted)
	require.Len(t, res.Latency, res.Accepted)
	require.Positive(t, res.AcceptedPerSecond())
}

func TestErrorCodes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "plain failure", http.StatusBadGateway)
	}))
	c, err := client.New(srv.URL, "wp_k", srv.Client())
	require.NoError(t, err)
	g, err := New(Config{TemplateID: 1, Concurrency: 2, Duration: 50 * time.Millisecond}, c)
	require.NoError(t, err)
	res, err := g.Run(context.Background())
	require.NoError(t, err)
	require.Zero(t, res.Accepted)
	require.Positive(t, res.Errors["502 http_502"])
	srv.Close()

	g, err = New(Config{TemplateID: 1, Concurrency: 1, Duration: 50 * time.Millisecond}, c)
	require.NoError(t, err)
	res, err = g.Run(context.Background())
	require.NoError(t, err)
	require.Positive(t, res.Errors["transport"], "a closed server is a transport error")
}

// fakeSender answers after delay (fake time inside a synctest bubble) and
// records when each request started.
type fakeSender struct {
	delay     time.Duration
	mu        sync.Mutex
	at        []time.Time
	receivers []string
}

func (f *fakeSender) Send(ctx context.Context, req access.SendRequest, _ string) (access.SendResponse, error) {
	f.mu.Lock()
	f.at = append(f.at, time.Now())
	for _, m := range req.Messages {
		f.receivers = append(f.receivers, m.Receivers...)
	}
	f.mu.Unlock()
	time.Sleep(f.delay)
	return access.SendResponse{Messages: []access.MessageResult{{MessageID: "m", Receivers: req.Messages[0].Receivers}}}, nil
}

// TestReceiversNeverRepeat: every receiver of every message is new, so the
// server's content dedup drops none of the generated load.
func TestReceiversNeverRepeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeSender{}
		g, err := New(Config{TemplateID: 1, Rate: 100, Concurrency: 4, Duration: time.Second,
			MessagesPerRequest: 3, ReceiversPerMessage: 2}, f)
		require.NoError(t, err)
		_, err = g.Run(context.Background())
		require.NoError(t, err)
		require.Len(t, f.receivers, 100*3*2)
		seen := make(map[string]bool, len(f.receivers))
		for _, r := range f.receivers {
			require.False(t, seen[r], "receiver %q repeated", r)
			seen[r] = true
		}
	})
}

// TestOpenLoopPacing: at 50/s for 1s exactly 50 requests start, 20ms apart,
// and with a fast server each one's latency is its own.
func TestOpenLoopPacing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeSender{delay: time.Millisecond}
		g, err := New(Config{TemplateID: 1, Rate: 50, Concurrency: 4, Duration: time.Second}, f)
		require.NoError(t, err)
		start := time.Now()
		res, err := g.Run(context.Background())
		require.NoError(t, err)
		require.Equal(t, 50, res.Accepted)
		for i, at := range f.at {
			require.Equal(t, time.Duration(i)*20*time.Millisecond, at.Sub(start), "request %d", i)
		}
		require.Equal(t, time.Millisecond, Percentile(res.Latency, 100))
	})
}

// TestOpenLoopCoordinatedOmission: one worker, 100/s scheduled, a server
// that takes 100ms. Request i is meant to start at 10ms·i but starts at
// 100ms·i, so its latency counts the wait: (i+1)·100ms − i·10ms.
func TestOpenLoopCoordinatedOmission(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeSender{delay: 100 * time.Millisecond}
		g, err := New(Config{TemplateID: 1, Rate: 100, Concurrency: 1, Duration: time.Second}, f)
		require.NoError(t, err)
		res, err := g.Run(context.Background())
		require.NoError(t, err)
		require.Equal(t, 100, res.Accepted)
		require.Equal(t, 100*time.Millisecond, res.Latency[0])
		require.Equal(t, 4510*time.Millisecond, Percentile(res.Latency, 50))
		require.Equal(t, 9010*time.Millisecond, Percentile(res.Latency, 100))
		require.Equal(t, 10*time.Second, res.Elapsed, "the schedule is sent in full")
	})
}

func TestCancelStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 450*time.Millisecond)
		defer cancel()
		g, err := New(Config{TemplateID: 1, Rate: 10, Duration: time.Hour}, &fakeSender{})
		require.NoError(t, err)
		res, err := g.Run(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, 5, res.Accepted)
	})
}

func TestPercentile(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		var out []time.Duration
		for _, v := range n {
			out = append(out, time.Duration(v)*time.Millisecond)
		}
		return out
	}
	tests := []struct {
		name    string
		samples []time.Duration
		p       float64
		want    time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"median of four", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of 100", ms(seq(100)...), 99, 99 * time.Millisecond},
		{"max", ms(1, 2, 3), 100, 3 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, Percentile(tt.samples, tt.p))
		})
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

func TestConfigValidation(t *testing.T) {
	_, err := New(Config{Duration: time.Second}, &fakeSender{})
	require.ErrorContains(t, err, "template")
	_, err = New(Config{TemplateID: 1}, &fakeSender{})
	require.ErrorContains(t, err, "duration")
	_, err = New(Config{TemplateID: 1, Duration: time.Second, Rate: -1}, &fakeSender{})
	require.ErrorContains(t, err, "rate")
}
