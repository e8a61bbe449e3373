package webhook_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/waypost/waypost/internal/platform/egress"
	"github.com/waypost/waypost/internal/push/channel"
	"github.com/waypost/waypost/internal/push/channel/webhook"
)

func TestMain(m *testing.M) {
	// fasthttp's cleaners of idle connections notice that a closed
	// client's connections are gone only after their next sleep.
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*Client).mCleaner"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"))
}

const secret = "whsec_test"

var fixedNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

var msg = channel.Message{
	MessageID: "m-1", BusinessID: "2000000120260304", TemplateID: 1,
	Receiver: "user-7", Text: "Your parcel arrived",
}

// recorded is one request the test server saw.
type recorded struct {
	header http.Header
	body   []byte
}

// sink is an httptest server answering with scripted statuses, recording
// every request.
type sink struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

// newSink answers the n-th request with replies[n] (the last one repeats).
func newSink(t *testing.T, replies ...func(http.ResponseWriter, *http.Request)) *sink {
	t.Helper()
	s := &sink{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		n := len(s.reqs)
		s.reqs = append(s.reqs, recorded{header: r.Header.Clone(), body: body})
		s.mu.Unlock()
		replies[min(n, len(replies)-1)](w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *sink) requests() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recorded(nil), s.reqs...)
}

func status(code int, hdr ...string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte(http.StatusText(code)))
	}
}

// harness builds a sender with a fixed clock and a recording, instant sleep.
type harness struct {
	mu     sync.Mutex
	sleeps []time.Duration
}

func (h *harness) sleep(ctx context.Context, d time.Duration) error {
	h.mu.Lock()
	h.sleeps = append(h.sleeps, d)
	h.mu.Unlock()
	return ctx.Err()
}

func (h *harness) sender(t *testing.T, cfg webhook.Config, guard *egress.Guard) channel.Sender {
	t.Helper()
	if cfg.Secret == "" {
		cfg.Secret = secret
	}
	client := webhook.NewClient(guard)
	t.Cleanup(client.CloseIdleConnections)
	s, err := webhook.New(cfg, client,
		webhook.WithClock(func() time.Time { return fixedNow }),
		webhook.WithSleep(h.sleep),
		webhook.WithJitter(func(d time.Duration) time.Duration { return d }),
	)
	require.NoError(t, err)
	return s
}

func loopback() *egress.Guard {
	return egress.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
}

func TestSendSignedRequest(t *testing.T) {
	srv := newSink(t, status(http.StatusOK, "X-Request-Id", "rcv-9"))
	var h harness
	res, err := h.sender(t, webhook.Config{URL: srv.URL + "/hook"}, loopback()).Send(context.Background(), msg)
	require.NoError(t, err)
	require.Equal(t, "rcv-9", res.ProviderID)

	reqs := srv.requests()
	require.Len(t, reqs, 1)
	r := reqs[0]
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	require.Equal(t, "waypost-webhook/1", r.header.Get("User-Agent"))
	require.Equal(t, "m-1", r.header.Get("X-Waypost-Message-Id"))
	require.Equal(t, strconv.FormatInt(fixedNow.Unix(), 10), r.header.Get("X-Waypost-Timestamp"))
	require.Regexp(t, `^v1=[0-9a-f]{64}$`, r.header.Get("X-Waypost-Signature"))

	var body map[string]any
	require.NoError(t, json.Unmarshal(r.body, &body))
	require.Equal(t, map[string]any{
		"messageId": "m-1", "businessId": "2000000120260304", "templateId": float64(1),
		"receiver": "user-7", "text": "Your parcel arrived", "sentAt": "2026-03-04T05:06:07Z",
	}, body)

	tests := []struct {
		name    string
		secret  string
		mutate  func(http.Header, []byte) []byte
		now     time.Time
		wantErr error
	}{
		{name: "valid", secret: secret, now: fixedNow.Add(time.Minute)},
		{name: "tampered body", secret: secret, now: fixedNow,
			mutate:  func(_ http.Header, b []byte) []byte { return append([]byte(nil), append(b[:len(b)-1], ' ', '}')...) },
			wantErr: webhook.ErrBadSignature},
		{name: "wrong secret", secret: "other", now: fixedNow, wantErr: webhook.ErrBadSignature},
		{name: "stale timestamp", secret: secret, now: fixedNow.Add(6 * time.Minute), wantErr: webhook.ErrStale},
		{name: "future timestamp", secret: secret, now: fixedNow.Add(-6 * time.Minute), wantErr: webhook.ErrStale},
		{name: "timestamp swapped keeps old signature", secret: secret, now: fixedNow,
			mutate: func(h http.Header, b []byte) []byte {
				h.Set("X-Waypost-Timestamp", strconv.FormatInt(fixedNow.Unix()+1, 10))
				return b
			},
			wantErr: webhook.ErrBadSignature},
		{name: "rotated secrets list", secret: secret, now: fixedNow,
			mutate: func(h http.Header, b []byte) []byte {
				h.Set("X-Waypost-Signature", "v1=00ff, "+h.Get("X-Waypost-Signature"))
				return b
			}},
		{name: "missing signature", secret: secret, now: fixedNow,
			mutate:  func(h http.Header, b []byte) []byte { h.Del("X-Waypost-Signature"); return b },
			wantErr: webhook.ErrMissingHeaders},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := r.header.Clone()
			b := append([]byte(nil), r.body...)
			if tc.mutate != nil {
				b = tc.mutate(hdr, b)
			}
			err := webhook.Verify(tc.secret, hdr, b, tc.now, 5*time.Minute)
			if tc.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.wantErr)
		})
	}
}

func TestSendRetries(t *testing.T) {
	tests := []struct {
		name          string
		replies       []func(http.ResponseWriter, *http.Request)
		cfg           webhook.Config
		wantErr       bool
		wantPermanent bool
		wantAttempts  int
		wantSleeps    []time.Duration
		wantContains  string
	}{
		{name: "500 twice then success",
			replies:      []func(http.ResponseWriter, *http.Request){status(500), status(502), status(204)},
			wantAttempts: 3, wantSleeps: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}},
		{name: "500 until attempts run out",
			replies: []func(http.ResponseWriter, *http.Request){status(503)},
			cfg:     webhook.Config{MaxAttempts: 4, BaseBackoff: 100 * time.Millisecond},
			wantErr: true, wantAttempts: 4, wantContains: "attempt 4/4: status 503",
			wantSleeps: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}},
		{name: "400 is permanent without retry",
			replies: []func(http.ResponseWriter, *http.Request){status(400)},
			wantErr: true, wantPermanent: true, wantAttempts: 1, wantContains: "status 400"},
		{name: "404 is permanent",
			replies: []func(http.ResponseWriter, *http.Request){status(404)},
			wantErr: true, wantPermanent: true, wantAttempts: 1, wantContains: "status 404"},
		{name: "429 honours Retry-After",
			replies:      []func(http.ResponseWriter, *http.Request){status(429, "Retry-After", "7"), status(200)},
			wantAttempts: 2, wantSleeps: []time.Duration{7 * time.Second}},
		{name: "503 Retry-After as HTTP date",
			replies: []func(http.ResponseWriter, *http.Request){
				status(503, "Retry-After", fixedNow.Add(3*time.Second).Format(http.TimeFormat)), status(200)},
			wantAttempts: 2, wantSleeps: []time.Duration{3 * time.Second}},
		{name: "Retry-After is capped",
			replies:      []func(http.ResponseWriter, *http.Request){status(429, "Retry-After", "86400"), status(200)},
			wantAttempts: 2, wantSleeps: []time.Duration{webhook.MaxBackoff}},
		{name: "408 is retried",
			replies:      []func(http.ResponseWriter, *http.Request){status(408), status(200)},
			wantAttempts: 2, wantSleeps: []time.Duration{200 * time.Millisecond}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newSink(t, tc.replies...)
			var h harness
			cfg := tc.cfg
			cfg.URL = srv.URL
			_, err := h.sender(t, cfg, loopback()).Send(context.Background(), msg)
			if tc.wantErr {
				require.Error(t, err)
				require.Equal(t, tc.wantPermanent, channel.IsPermanent(err), "error: %v", err)
				require.ErrorContains(t, err, tc.wantContains)
			} else {
				require.NoError(t, err)
			}
			reqs := srv.requests()
			require.Len(t, reqs, tc.wantAttempts)
			for _, r := range reqs {
				require.NoError(t, webhook.Verify(secret, r.header, r.body, fixedNow, time.Minute))
				require.Equal(t, reqs[0].body, r.body, "retries resend the same body")
			}
			require.Equal(t, tc.wantSleeps, h.sleeps)
		})
	}
}

func TestSendRedirects(t *testing.T) {
	target := newSink(t, status(200))
	tests := []struct {
		name          string
		code          int
		wantErr       bool
		targetHits    int
		wantPermanent bool
	}{
		{name: "307 keeps the signed POST", code: http.StatusTemporaryRedirect, targetHits: 1},
		{name: "308 keeps the signed POST", code: http.StatusPermanentRedirect, targetHits: 2},
		{name: "302 would become GET and is permanent", code: http.StatusFound, wantErr: true, wantPermanent: true, targetHits: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := newSink(t, status(tc.code, "Location", target.URL+"/moved"))
			var h harness
			_, err := h.sender(t, webhook.Config{URL: src.URL}, loopback()).Send(context.Background(), msg)
			if tc.wantErr {
				require.Error(t, err)
				require.Equal(t, tc.wantPermanent, channel.IsPermanent(err))
				require.ErrorContains(t, err, strconv.Itoa(tc.code))
			} else {
				require.NoError(t, err)
			}
			reqs := target.requests()
			require.Len(t, reqs, tc.targetHits)
			for _, r := range reqs {
				require.NoError(t, webhook.Verify(secret, r.header, r.body, fixedNow, time.Minute))
			}
		})
	}
}

func TestSendTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := newSink(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	var h harness
	_, err := h.sender(t, webhook.Config{URL: srv.URL, Timeout: 20 * time.Millisecond, MaxAttempts: 2}, loopback()).
		Send(context.Background(), msg)
	require.Error(t, err)
	require.False(t, channel.IsPermanent(err))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Len(t, srv.requests(), 2)
}

func TestSendContextCanceledStopsRetrying(t *testing.T) {
	srv := newSink(t, status(500))
	ctx, cancel := context.WithCancel(context.Background())
	s, err := webhook.New(webhook.Config{URL: srv.URL, Secret: secret}, webhook.NewClient(loopback()),
		webhook.WithSleep(func(context.Context, time.Duration) error { cancel(); return context.Canceled }))
	require.NoError(t, err)
	_, err = s.Send(ctx, msg)
	require.ErrorIs(t, err, context.Canceled)
	require.Len(t, srv.requests(), 1)
}

func TestSendGuardRefusal(t *testing.T) {
	srv := newSink(t, status(200))
	var h harness
	_, err := h.sender(t, webhook.Config{URL: srv.URL}, egress.New(nil)).Send(context.Background(), msg)
	require.ErrorIs(t, err, egress.ErrForbidden)
	require.True(t, channel.IsPermanent(err))
	require.Empty(t, srv.requests())
	require.Empty(t, h.sleeps, "a refused address is not retried")

	// The default client (nil) refuses internal addresses too.
	s, err := webhook.New(webhook.Config{URL: srv.URL, Secret: secret}, nil)
	require.NoError(t, err)
	_, err = s.Send(context.Background(), msg)
	require.ErrorIs(t, err, egress.ErrForbidden)
}

func TestNewValidation(t *testing.T) {
	tests := []struct {
		name    string
		cfg     webhook.Config
		wantErr string
	}{
		{name: "ok", cfg: webhook.Config{URL: "https://example.com/hook", Secret: "s"}},
		{name: "no url", cfg: webhook.Config{Secret: "s"}, wantErr: "url is required"},
		{name: "bad scheme", cfg: webhook.Config{URL: "ftp://example.com", Secret: "s"}, wantErr: "must be http or https"},
		{name: "no host", cfg: webhook.Config{URL: "https:///x", Secret: "s"}, wantErr: "no host"},
		{name: "credentials", cfg: webhook.Config{URL: "https://u:p@example.com", Secret: "s"}, wantErr: "credentials"},
		{name: "no secret", cfg: webhook.Config{URL: "https://example.com"}, wantErr: "secret is required"},
		{name: "negative", cfg: webhook.Config{URL: "https://example.com", Secret: "s", MaxAttempts: -1}, wantErr: "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := webhook.New(tc.cfg, nil)
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, webhook.ErrConfig)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

// Each sender signs with its own secret though signers are pooled and
// requests share header templates: concurrent sends of two accounts all
// verify under their own secret only, with their own bodies.
func TestSendConcurrentAccountsSignWithTheirOwnSecret(t *testing.T) {
	srv := newSink(t, status(http.StatusOK))
	client := webhook.NewClient(loopback())
	t.Cleanup(client.CloseIdleConnections)
	secrets := []string{"whsec_a", "whsec_b"}
	senders := make([]channel.Sender, len(secrets))
	for i, sec := range secrets {
		s, err := webhook.New(webhook.Config{URL: srv.URL + "/" + sec, Secret: sec}, client)
		require.NoError(t, err)
		senders[i] = s
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 25 {
				m := msg
				m.Receiver = strconv.Itoa(g*100 + i)
				if _, err := senders[(g+i)%2].Send(context.Background(), m); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	reqs := srv.requests()
	require.Len(t, reqs, 100)
	seen := map[string]bool{}
	for _, r := range reqs {
		var p struct{ Receiver string }
		require.NoError(t, json.Unmarshal(r.body, &p))
		seen[p.Receiver] = true
		ok := 0
		for _, sec := range secrets {
			if webhook.Verify(sec, r.header, r.body, time.Now(), time.Minute) == nil {
				ok++
			}
		}
		require.Equal(t, 1, ok, "verifies under exactly one secret")
		require.Equal(t, []string{"application/json"}, r.header["Content-Type"])
		require.Equal(t, []string{webhook.UserAgent}, r.header["User-Agent"])
		require.Equal(t, strconv.Itoa(len(r.body)), r.header.Get("Content-Length"))
	}
	require.Len(t, seen, 100, "every body is its own")
}

func TestSendHTTPS(t *testing.T) {
	var got []string
	var mu sync.Mutex
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Header.Get("X-Waypost-Message-Id"))
		mu.Unlock()
		if webhook.Verify(secret, r.Header, body, time.Now(), time.Minute) != nil {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())

	trusting := webhook.NewClient(loopback(), webhook.WithTLSConfig(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}))
	t.Cleanup(trusting.CloseIdleConnections)
	s, err := webhook.New(webhook.Config{URL: srv.URL + "/hook", Secret: secret}, trusting)
	require.NoError(t, err)
	_, err = s.Send(context.Background(), msg)
	require.NoError(t, err)

	// The system's roots do not know the test server's certificate.
	plain := webhook.NewClient(loopback())
	t.Cleanup(plain.CloseIdleConnections)
	s, err = webhook.New(webhook.Config{URL: srv.URL + "/hook", Secret: secret, MaxAttempts: 1}, plain)
	require.NoError(t, err)
	_, err = s.Send(context.Background(), msg)
	require.ErrorContains(t, err, "certificate")
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"m-1"}, got)
}

func TestSendLargeReplies(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	large := func(code int) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(code)
			_, _ = io.WriteString(w, big)
		}
	}
	srv := newSink(t, large(200), large(503), large(200))
	var h harness
	s := h.sender(t, webhook.Config{URL: srv.URL}, loopback())
	_, err := s.Send(context.Background(), msg)
	require.NoError(t, err, "a 2xx is a delivery, whatever its body")
	require.Len(t, srv.requests(), 1)

	_, err = s.Send(context.Background(), msg)
	require.NoError(t, err, "a 503 with a large body is retried")
	require.Len(t, srv.requests(), 3)
	require.Len(t, h.sleeps, 1)
}
