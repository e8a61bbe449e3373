// Package bench is the load generator behind `waypost bench push`: it drives
// POST /api/v1/send on a running server in a closed loop (fixed concurrency)
// or an open loop (fixed rate), measures latency, and with a local webhook
// Sink counts what the server delivers.
package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/waypost/waypost/internal/push/access"
	"github.com/waypost/waypost/internal/push/client"
)

// Sender sends one request to the push API; *client.Client is one.
type Sender interface {
	Send(ctx context.Context, req access.SendRequest, idempotencyKey string) (access.SendResponse, error)
}

// Config describes one load run.
type Config struct {
	TemplateID int64
	// Concurrency is the number of workers. In closed-loop mode (Rate == 0)
	// each sends its next request as soon as the last one answers; in
	// open-loop mode it bounds the requests in flight (default 256).
	Concurrency int
	// Rate, when > 0, is the requests per second of the open loop.
	Rate float64
	// Duration is how long requests are started for.
	Duration time.Duration
	// ReceiversPerMessage and MessagesPerRequest shape each request (default 1).
	ReceiversPerMessage int
	MessagesPerRequest  int
	// Variables are passed with every message.
	Variables map[string]any
}

// DefaultOpenLoopWorkers bounds the requests in flight in rate mode.
const DefaultOpenLoopWorkers = 256

func (c Config) withDefaults() (Config, error) {
	if c.TemplateID <= 0 {
		return c, errors.New("bench: no template id")
	}
	if c.Duration <= 0 {
		return c, errors.New("bench: duration must be positive")
	}
	if c.Rate < 0 {
		return c, errors.New("bench: rate must not be negative")
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 1
		if c.Rate > 0 {
			c.Concurrency = DefaultOpenLoopWorkers
		}
	}
	if c.ReceiversPerMessage <= 0 {
		c.ReceiversPerMessage = 1
	}
	if c.MessagesPerRequest <= 0 {
		c.MessagesPerRequest = 1
	}
	return c, nil
}

// Clock is the time source of a run; tests inject a fake one.
type Clock interface {
	Now() time.Time
	// SleepUntil blocks until t or until ctx ends.
	SleepUntil(ctx context.Context, t time.Time) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) SleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Generator runs load against one Sender.
type Generator struct {
	cfg    Config
	sender Sender
	clock  Clock
	// onAccepted, when set, learns every accepted message id and the time
	// its request was meant to start, so a Sink can correlate deliveries.
	onAccepted func(messageID string, sent time.Time)
	// seq numbers the messages sent, so every receiver is new and no
	// message is a content duplicate of another (dedup would drop it).
	seq atomic.Uint64
}

// Option tunes a Generator.
type Option func(*Generator)

// WithClock replaces the wall clock, for tests.
func WithClock(c Clock) Option { return func(g *Generator) { g.clock = c } }

// WithAccepted registers fn to learn each accepted message id and the
// intended send time of its request.
func WithAccepted(fn func(messageID string, sent time.Time)) Option {
	return func(g *Generator) { g.onAccepted = fn }
}

// New returns a Generator for cfg.
func New(cfg Config, s Sender, opts ...Option) (*Generator, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	g := &Generator{cfg: cfg, sender: s, clock: realClock{}}
	for _, o := range opts {
		o(g)
	}
	return g, nil
}

// Run starts requests for the configured duration, waits for those in
// flight, and returns what it measured. In rate mode every request scheduled
// inside the duration is sent, even when a slow server makes that take
// longer. Canceling ctx stops it early.
func (g *Generator) Run(ctx context.Context) (*Result, error) {
	start := g.clock.Now()
	end := start.Add(g.cfg.Duration)
	recs := make([]*recorder, g.cfg.Concurrency)
	var wg sync.WaitGroup
	if g.cfg.Rate > 0 {
		jobs := make(chan time.Time)
		for i := range recs {
			recs[i] = newRecorder()
			wg.Go(func() {
				for intended := range jobs {
					g.one(ctx, recs[i], intended)
				}
			})
		}
		g.schedule(ctx, start, end, jobs)
		close(jobs)
	} else {
		for i := range recs {
			recs[i] = newRecorder()
			wg.Go(func() {
				for ctx.Err() == nil {
					t := g.clock.Now()
					if !t.Before(end) {
						return
					}
					g.one(ctx, recs[i], t)
				}
			})
		}
	}
	wg.Wait()
	res := merge(recs)
	res.Start = start
	res.Elapsed = g.clock.Now().Sub(start)
	return res, ctx.Err()
}

// schedule hands out the intended start times start + i/rate. When every
// worker is busy the hand-off blocks and the schedule falls behind; the
// latency is still measured from the intended time, so a stalled server
// shows in the percentiles instead of silently lowering the offered load
// (coordinated omission).
func (g *Generator) schedule(ctx context.Context, start, end time.Time, jobs chan<- time.Time) {
	interval := float64(time.Second) / g.cfg.Rate
	for i := 0; ; i++ {
		intended := start.Add(time.Duration(float64(i) * interval))
		if !intended.Before(end) {
			return
		}
		if g.clock.SleepUntil(ctx, intended) != nil {
			return
		}
		select {
		case jobs <- intended:
		case <-ctx.Done():
			return
		}
	}
}

// one sends a single request meant to start at intended and records it.
func (g *Generator) one(ctx context.Context, rec *recorder, intended time.Time) {
	req := access.SendRequest{TemplateID: g.cfg.TemplateID, Messages: make([]access.MessageRequest, g.cfg.MessagesPerRequest)}
	for m := range req.Messages {
		rcv := make([]string, g.cfg.ReceiversPerMessage)
		prefix := "bench-" + strconv.FormatUint(g.seq.Add(1), 10) + "-"
		for r := range rcv {
			rcv[r] = prefix + strconv.Itoa(r)
		}
		req.Messages[m] = access.MessageRequest{Receivers: rcv, Variables: g.cfg.Variables}
	}
	out, err := g.sender.Send(ctx, req, "")
	lat := g.clock.Now().Sub(intended)
	if err != nil {
		if ctx.Err() != nil {
			return // stopped by the caller, not the server's doing
		}
		rec.fail(errorCode(err))
		return
	}
	rec.ok(lat)
	for _, m := range out.Messages {
		rec.messages++
		rec.receivers += len(m.Receivers)
		rec.invalid += len(m.Invalid)
		if g.onAccepted != nil && len(m.Receivers) > 0 {
			g.onAccepted(m.MessageID, intended)
		}
	}
}

// errorCode names an error by the API's stable code, or as a transport error.
func errorCode(err error) string {
	var apiErr *client.APIError
	if errors.As(err, &apiErr) {
		return fmt.Sprintf("%d %s", apiErr.Status, apiErr.Code)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "transport"
}
