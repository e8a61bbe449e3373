// Package webhook delivers push messages as JSON POSTs signed with
// HMAC-SHA256, retrying transient failures with exponential backoff, and
// gives receivers Verify to check the signature and reject replays.
package webhook

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

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
	url    *url.URL
	client *Client
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
	jitter func(d time.Duration) time.Duration

	signers *sync.Pool // of *signer keyed with cfg.Secret
}

var _ channel.Sender = (*Sender)(nil)

// New validates cfg and returns a sender using client, which senders of one
// process share; a nil client gets one whose guard refuses every internal
// address.
func New(cfg Config, client *Client, opts ...Option) (channel.Sender, error) {
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
		client = NewClient(nil)
	}
	s := &Sender{cfg: cfg, url: u, client: client, now: time.Now, sleep: sleepCtx, jitter: equalJitter,
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
	body, err := appendPayload(make([]byte, 0, payloadOverhead+len(p.MessageID)+len(p.BusinessID)+len(p.Receiver)+len(p.Text)), p)
	if err != nil {
		return channel.Result{}, fmt.Errorf("webhook: encode %s: %w", m.MessageID, err)
	}
	var lastErr error
	for attempt := 1; ; attempt++ {
		res, wait, err := s.attempt(ctx, m.MessageID, body)
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

// maxRedirects bounds the 307/308 hops one attempt follows.
const maxRedirects = 10

// attempt makes one signed POST of body, following 307 and 308 redirects
// (which keep the method and body; each hop is dialed through the guard).
// 301, 302 and 303 would turn a POST into a bodiless GET, so they are
// returned as they are, a permanent failure. A non-nil error is either
// Permanent or retryable; wait > 0 is a wait the receiver asked for with
// Retry-After.
func (s *Sender) attempt(ctx context.Context, messageID string, body []byte) (channel.Result, time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return channel.Result{}, 0, err
	}
	deadline := time.Now().Add(s.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer func() {
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
	}()
	// Signed per attempt so a retry late in the window still verifies.
	ts, sig := s.signNow(body)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	req.Header.SetUserAgent(UserAgent)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, sig)
	req.Header.Set(HeaderMessageID, messageID)
	req.SetBodyRaw(body)
	// The account's URL as given for the first hop, as it was validated.
	target, uri := s.url, s.cfg.URL
	for hop := 0; ; hop++ {
		req.SetRequestURI(uri)
		err := s.client.fc.DoDeadline(req, resp, deadline)
		switch {
		case errors.Is(err, fasthttp.ErrBodyTooLarge):
			// The status line and headers arrived; the body is not kept.
		case errors.Is(err, egress.ErrForbidden):
			return channel.Result{}, 0, channel.Permanent(err)
		case errors.Is(err, fasthttp.ErrTimeout):
			return channel.Result{}, 0, fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
		case err != nil:
			return channel.Result{}, 0, err
		}
		code := resp.StatusCode()
		if (code != fasthttp.StatusTemporaryRedirect && code != fasthttp.StatusPermanentRedirect) || hop >= maxRedirects {
			break
		}
		next, err := redirect(target, resp.Header.Peek("Location"))
		if err != nil {
			return channel.Result{}, 0, channel.Permanent(fmt.Errorf("status %d: %w", code, err))
		}
		target, uri = next, next.String()
		resp.Reset()
	}
	code := resp.StatusCode()
	if code >= 200 && code < 300 {
		return channel.Result{ProviderID: string(resp.Header.Peek("X-Request-Id"))}, 0, nil
	}
	b := resp.Body()
	snippet := b[:min(len(b), snippetBytes)]
	switch {
	case code == fasthttp.StatusTooManyRequests || code == fasthttp.StatusRequestTimeout || code >= 500:
		return channel.Result{}, retryAfter(string(resp.Header.Peek("Retry-After")), s.now()), statusError(code, snippet)
	default:
		return channel.Result{}, 0, channel.Permanent(statusError(code, snippet))
	}
}

// redirect resolves a Location header against the URL that answered.
func redirect(from *url.URL, location []byte) (*url.URL, error) {
	if len(location) == 0 {
		return nil, errors.New("redirect without a Location")
	}
	ref, err := url.Parse(string(location))
	if err != nil {
		return nil, fmt.Errorf("redirect to a bad Location: %w", err)
	}
	to := from.ResolveReference(ref)
	if to.Scheme != "http" && to.Scheme != "https" {
		return nil, fmt.Errorf("redirect to %q: not http or https", to.Scheme)
	}
	return to, nil
}

// Bytes of a reply kept for the error text, and the most of a body read.
const (
	snippetBytes = 256
	drainBytes   = 64 << 10
)

func statusError(code int, snippet []byte) error {
	text := strings.TrimSpace(string(snippet))
	if text == "" {
		return fmt.Errorf("status %d %s", code, http.StatusText(code))
	}
	return fmt.Errorf("status %d %s: %q", code, http.StatusText(code), text)
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
