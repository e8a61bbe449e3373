package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/waypost/waypost/internal/push/channel/webhook"
)

// Sink is a webhook receiver that counts the server's deliveries. With a
// secret it checks every signature with webhook.Verify and answers 401 to a
// bad one (which the server treats as permanent, so it is not retried);
// without one it counts whatever arrives.
type Sink struct {
	secret string
	now    func() time.Time

	mu        sync.Mutex
	seen      map[string]time.Time // messageId + "\x00" + receiver → first arrival
	sent      map[string]time.Time // messageId → intended send time
	last      time.Time
	badSig    int
	dups      int
	arrived   chan struct{} // signalled after each new delivery
	srv       *fasthttp.Server
	ln        net.Listener
	served    chan error
	delivered int
}

// NewSink returns a sink verifying signatures with secret ("" counts
// without verifying); now may be nil for the wall clock.
func NewSink(secret string, now func() time.Time) *Sink {
	if now == nil {
		now = time.Now
	}
	return &Sink{secret: secret, now: now, seen: map[string]time.Time{}, sent: map[string]time.Time{},
		arrived: make(chan struct{}, 1)}
}

// Start listens on addr (e.g. 127.0.0.1:0) and serves until Close. The
// sink serves with fasthttp: it shares the machine with the server under
// test, and every cycle it spends per delivery is one the server does not
// get (net/http's server cost it about 13 % more CPU per run).
func (s *Sink) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("sink listen %s: %w", addr, err)
	}
	s.ln = ln
	s.srv = &fasthttp.Server{
		Handler:              s.serve,
		Name:                 "waypost-bench-sink",
		ReadTimeout:          30 * time.Second,
		IdleTimeout:          2 * time.Minute,
		MaxRequestBodySize:   maxBody,
		NoDefaultDate:        true,
		NoDefaultContentType: true,
	}
	s.served = make(chan error, 1)
	go func() { s.served <- s.srv.Serve(ln) }()
	return nil
}

// maxBody bounds a delivery's body; a webhook body is a few hundred bytes.
const maxBody = 1 << 20

// URL is the address webhooks should be sent to, valid after Start.
func (s *Sink) URL() string { return "http://" + s.ln.Addr().String() + "/hook" }

// Close stops the server, waiting for requests in flight within ctx.
func (s *Sink) Close(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	err := s.srv.ShutdownWithContext(ctx)
	return errors.Join(err, <-s.served)
}

// Expect records that messageID was sent at t, so its deliveries yield an
// end-to-end latency. It may be called before or after they arrive.
func (s *Sink) Expect(messageID string, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent[messageID] = t
}

// serve receives one webhook POST.
func (s *Sink) serve(ctx *fasthttp.RequestCtx) {
	code, text := s.receive(string(ctx.Request.Header.Peek(webhook.HeaderTimestamp)),
		string(ctx.Request.Header.Peek(webhook.HeaderSignature)), ctx.PostBody())
	ctx.SetStatusCode(code)
	if text != "" {
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString(text)
	}
}

// receive counts one delivery given its timestamp and signature headers and
// body, and returns the status to answer with and, for a refusal, why.
func (s *Sink) receive(ts, sig string, body []byte) (int, string) {
	now := s.now()
	if s.secret != "" {
		if err := webhook.VerifyValues(s.secret, ts, sig, body, now, 0); err != nil {
			s.mu.Lock()
			s.badSig++
			s.mu.Unlock()
			return fasthttp.StatusUnauthorized, "bad signature"
		}
	}
	var p struct {
		MessageID string `json:"messageId"`
		Receiver  string `json:"receiver"`
	}
	if err := json.Unmarshal(body, &p); err != nil || p.MessageID == "" {
		return fasthttp.StatusBadRequest, "want a webhook JSON body"
	}
	s.mu.Lock()
	k := p.MessageID + "\x00" + p.Receiver
	if _, dup := s.seen[k]; dup {
		s.dups++
	} else {
		s.seen[k] = now
		s.delivered++
		s.last = now
	}
	s.mu.Unlock()
	select {
	case s.arrived <- struct{}{}:
	default:
	}
	return fasthttp.StatusNoContent, ""
}

// Delivered is the number of distinct (message, receiver) deliveries so far.
func (s *Sink) Delivered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.delivered
}

// Wait blocks until expected deliveries have arrived, ctx ends, or no new
// delivery has arrived for idle — the drain timeout, so a run whose
// deliveries stall does not hang.
func (s *Sink) Wait(ctx context.Context, expected int, idle time.Duration) {
	t := time.NewTimer(idle)
	defer t.Stop()
	for s.Delivered() < expected {
		select {
		case <-s.arrived:
			t.Reset(idle)
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// Delivery is what the sink saw, measured from the run's start.
type Delivery struct {
	Expected, Delivered, BadSignature, Duplicates int
	// Window runs from the run's start to the last delivery.
	Window time.Duration
	// EndToEnd holds, sorted, from each correlated delivery the time from
	// its request's intended send to its arrival.
	EndToEnd []time.Duration
}

// PerSecond is deliveries per second over the window.
func (d *Delivery) PerSecond() float64 { return perSecond(d.Delivered, d.Window) }

// Report summarizes the deliveries of a run that started at start.
func (s *Sink) Report(start time.Time, expected int) *Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := &Delivery{Expected: expected, Delivered: s.delivered, BadSignature: s.badSig, Duplicates: s.dups}
	if s.delivered > 0 {
		d.Window = s.last.Sub(start)
	}
	for k, at := range s.seen {
		id, _, _ := strings.Cut(k, "\x00")
		if sent, ok := s.sent[id]; ok {
			d.EndToEnd = append(d.EndToEnd, at.Sub(sent))
		}
	}
	slices.Sort(d.EndToEnd)
	return d
}
