// Package webhook delivers push messages as JSON POSTs signed with
// HMAC-SHA256, retrying transient failures with exponential backoff, and
// gives receivers Verify to check the signature and reject replays.
package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/waypost/waypost/internal/platform/egress"
	"github.com/waypost/waypost/internal/push/channel"
)

// Defaults applied by New when a Config field is zero.
const (
	DefaultTimeout     = 5 * time.Second
	DefaultMaxAttempts = 3
	DefaultBaseBackoff = 200 * time.Millisecond
	// MaxBackoff caps one computed backoff and any Retry-After we honour, so
	// a receiver cannot park a worker for an hour.
	MaxBackoff = 30 * time.Second
)

// Header names and the User-Agent every request carries.
const (
	HeaderTimestamp = "X-Waypost-Timestamp"
	HeaderSignature = "X-Waypost-Signature"
	HeaderMessageID = "X-Waypost-Message-Id"
	UserAgent       = "waypost-webhook/1"
)

// ErrConfig is wrapped by every configuration validation error from New.
var ErrConfig = errors.New("invalid webhook config")

// Config is one webhook channel account. URL and Secret come from the channel
// account API; the rest are tuning knobs set in code.
type Config struct {
	URL    string `json:"url"`
	Secret string `json:"secret"`

	Timeout     time.Duration `json:"-"` // per attempt; default 5s
	MaxAttempts int           `json:"-"` // including the first; default 3
	BaseBackoff time.Duration `json:"-"` // before the 2nd attempt; doubles; default 200ms
}

// payload is the JSON body of every webhook request.
type payload struct {
	MessageID  string    `json:"messageId"`
	BusinessID string    `json:"businessId"`
	TemplateID int64     `json:"templateId"`
	Receiver   string    `json:"receiver"`
	Text       string    `json:"text"`
	SentAt     time.Time `json:"sentAt"`
}

// Option tunes a Sender, mostly for tests.
type Option func(*Sender)

// WithClock sets the clock used for sentAt and the signature timestamp.
func WithClock(now func() time.Time) Option {
	return func(s *Sender) {
		if now != nil {
			s.now = now
		}
	}
}

// WithSleep replaces the wait between attempts; it must return early with
// ctx.Err() when ctx ends.
func WithSleep(sleep func(ctx context.Context, d time.Duration) error) Option {
	return func(s *Sender) {
		if sleep != nil {
			s.sleep = sleep
		}
	}
}

// WithJitter replaces the random source: it gets the full backoff d and
// returns the wait, which should lie in [d/2, d].
func WithJitter(jitter func(d time.Duration) time.Duration) Option {
	return func(s *Sender) {
		if jitter != nil {
			s.jitter = jitter
		}
	}
}

// Sender posts messages to one webhook URL. It is safe for concurrent use.
type Sender struct {
	cfg    Config
	client *http.Client
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
	jitter func(d time.Duration) time.Duration

	// Built once so a request costs only what differs per delivery.
	tmpl        *http.Request // method, URL and Host; copied per attempt
	contentType []string      // header values shared by every request:
	userAgent   []string      // len == cap, so an append copies
	signers     *sync.Pool    // of *signer keyed with cfg.Secret
}

var _ channel.Sender = (*Sender)(nil)

// New validates cfg and returns a sender using client, which should come from
// egress.Guard.HTTPClient; a nil client gets one from a guard refusing every
// internal address.
func New(cfg Config, client *http.Client, opts ...Option) (channel.Sender, error) {
	u, err := url.Parse(cfg.URL)
	switch {
	case cfg.URL == "":
		return nil, fmt.Errorf("%w: url is required", ErrConfig)
	case err != nil:
		return nil, fmt.Errorf("%w: url: %w", ErrConfig, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%w: url %q must be http or https", ErrConfig, cfg.URL)
	case u.Host == "":
		return nil, fmt.Errorf("%w: url %q has no host", ErrConfig, cfg.URL)
	case u.User != nil:
		return nil, fmt.Errorf("%w: url must not carry credentials; the signature authenticates", ErrConfig)
	case cfg.Secret == "":
		return nil, fmt.Errorf("%w: secret is required", ErrConfig)
	case cfg.Timeout < 0 || cfg.MaxAttempts < 0 || cfg.BaseBackoff < 0:
		return nil, fmt.Errorf("%w: timeout, maxAttempts and baseBackoff must not be negative", ErrConfig)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.BaseBackoff == 0 {
		cfg.BaseBackoff = DefaultBaseBackoff
	}
	if client == nil {
		client = egress.New(nil).HTTPClient(0)
	}
	// A shallow copy shares the guarded transport but gets our redirect rule:
	// 307/308 keep the signed POST and are followed (each hop dials through
	// the guard); 301/302/303 would turn it into a bodiless GET, so the 3xx
	// is returned instead and reported as a permanent failure.
	c := *client
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.Method != http.MethodPost || len(via) >= 10 {
			return http.ErrUseLastResponse
		}
		return nil
	}
	tmpl, err := http.NewRequest(http.MethodPost, cfg.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: url: %w", ErrConfig, err)
	}
	s := &Sender{cfg: cfg, client: &c, now: time.Now, sleep: sleepCtx, jitter: equalJitter,
		tmpl: tmpl, contentType: []string{"application/json"}, userAgent: []string{UserAgent},
		signers: newSignerPool(cfg.Secret)}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// equalJitter waits between half and all of d, so concurrent senders that
// failed together spread out while the wait still grows with d.
func equalJitter(d time.Duration) time.Duration {
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}

// Send posts m, retrying 5xx, 408, 429, timeouts and connection errors up to
// MaxAttempts within ctx. Other 4xx replies and egress refusals are
// channel.Permanent. ProviderID is the receiver's X-Request-Id, if any.
func (s *Sender) Send(ctx context.Context, m channel.Message) (channel.Result, error) {
	p := payload{
		MessageID: m.MessageID, BusinessID: m.BusinessID, TemplateID: m.TemplateID,
		Receiver: m.Receiver, Text: m.Text, SentAt: s.now().UTC(),
	}
	// The body is not pooled: net/http writes a request's headers and body
	// in one syscall only when the body is a *bytes.Reader (or another
	// reader it knows is in memory), which never says when the transport
	// is done with the bytes. A second write per request costs more than
	// the allocation.
	body, err := appendPayload(make([]byte, 0, payloadOverhead+len(p.MessageID)+len(p.BusinessID)+len(p.Receiver)+len(p.Text)), p)
	if err != nil {
		return channel.Result{}, fmt.Errorf("webhook: encode %s: %w", m.MessageID, err)
	}
	getBody := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	var lastErr error
	for attempt := 1; ; attempt++ {
		res, wait, err := s.attempt(ctx, m.MessageID, body, getBody)
		if err == nil {
			return res, nil
		}
		err = fmt.Errorf("webhook: send %s attempt %d/%d: %w", m.MessageID, attempt, s.cfg.MaxAttempts, err)
		if channel.IsPermanent(err) || ctx.Err() != nil || attempt >= s.cfg.MaxAttempts {
			return channel.Result{}, err
		}
		lastErr = err
		if wait <= 0 {
			wait = s.jitter(s.backoff(attempt))
		}
		if serr := s.sleep(ctx, wait); serr != nil {
			return channel.Result{}, errors.Join(serr, lastErr)
		}
	}
}

// backoff is BaseBackoff doubled per failed attempt, capped at MaxBackoff.
func (s *Sender) backoff(failed int) time.Duration {
	d := s.cfg.BaseBackoff
	for i := 1; i < failed && d < MaxBackoff; i++ {
		d *= 2
	}
	return min(d, MaxBackoff)
}

// attempt makes one signed POST of body, read through getBody. A non-nil
// error is either Permanent or retryable; wait > 0 is a wait the receiver
// asked for with Retry-After.
func (s *Sender) attempt(ctx context.Context, messageID string, body []byte, getBody func() (io.ReadCloser, error)) (channel.Result, time.Duration, error) {
	actx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	// Signed per attempt so a retry late in the window still verifies.
	ts, sig := s.signNow(body)
	vals := []string{ts, sig, messageID}
	req := s.tmpl.WithContext(actx)
	req.Header = http.Header{
		"Content-Type":  s.contentType,
		"User-Agent":    s.userAgent,
		HeaderTimestamp: vals[0:1:1],
		HeaderSignature: vals[1:2:2],
		HeaderMessageID: vals[2:3:3],
	}
	// GetBody hands a followed redirect or a transport retry a fresh reader.
	req.Body, _ = getBody()
	req.GetBody, req.ContentLength = getBody, int64(len(body))

	resp, err := s.client.Do(req)
	if err != nil {
		if errors.Is(err, egress.ErrForbidden) {
			return channel.Result{}, 0, channel.Permanent(err)
		}
		return channel.Result{}, 0, err
	}
	defer resp.Body.Close()
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		// Nothing of a 2xx body is kept: drain as much as the error path
		// reads, so the connection can be reused.
		if resp.Body != http.NoBody {
			_, _ = io.CopyN(io.Discard, resp.Body, snippetBytes+drainBytes)
		}
		return channel.Result{ProviderID: resp.Header.Get("X-Request-Id")}, 0, nil
	}
	// Read a little of the reply for the error text, and drain so the
	// connection can be reused.
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, snippetBytes))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainBytes))
	switch {
	case code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500:
		return channel.Result{}, retryAfter(resp.Header.Get("Retry-After"), s.now()), statusError(resp, snippet)
	default:
		return channel.Result{}, 0, channel.Permanent(statusError(resp, snippet))
	}
}

// Bytes of a reply read for the error text, and drained after it.
const (
	snippetBytes = 256
	drainBytes   = 64 << 10
)

func statusError(resp *http.Response, snippet []byte) error {
	text := strings.TrimSpace(string(snippet))
	if text == "" {
		return fmt.Errorf("status %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return fmt.Errorf("status %d %s: %q", resp.StatusCode, http.StatusText(resp.StatusCode), text)
}

// retryAfter parses Retry-After as seconds or an HTTP date, capped at
// MaxBackoff; zero means absent or unusable.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		d = time.Duration(min(secs, int64(MaxBackoff/time.Second))) * time.Second
	} else if at, err := http.ParseTime(v); err == nil {
		d = at.Sub(now)
	}
	if d <= 0 {
		return 0
	}
	return min(d, MaxBackoff)
}
