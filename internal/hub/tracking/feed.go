package tracking

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/platform/queue"
	orderv1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/order/v1"
)

// DefaultFeedGroup is the consumer group of the sandbox order centre's feed.
const DefaultFeedGroup = "sandbox-order-centre"

// ErrFeedClosed is returned by Start after Close.
var ErrFeedClosed = errors.New("tracking: order feed closed")

// FeedConfig tunes an OrderFeed; the zero value takes every default.
type FeedConfig struct {
	// Group is the consumer group on hub.TrackingTopic; default DefaultFeedGroup.
	Group string
	// AckTimeout is the subscription's ack timeout; default 30 s.
	AckTimeout time.Duration
	// MaxInFlight bounds deliveries in hand (different waybills run
	// concurrently); default 64.
	MaxInFlight int
	// CallTimeout bounds one AppendTrack call; default 5 s.
	CallTimeout time.Duration
	// RetryMin and RetryMax bound the jittered exponential wait between
	// AppendTrack attempts of one delivery; defaults 100 ms and 5 s.
	RetryMin, RetryMax time.Duration
	// RetryWindow is how long a delivery is retried in place — holding back
	// the later events of its waybill, which keeps them in order — before it
	// is nacked for redelivery; default half the AckTimeout.
	RetryWindow time.Duration
	// NackDelayMax caps the redelivery delay of a nacked delivery, which
	// grows with its attempt count; default 1 minute.
	NackDelayMax time.Duration
}

func (c FeedConfig) withDefaults() FeedConfig {
	if c.Group == "" {
		c.Group = DefaultFeedGroup
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = 30 * time.Second
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 64
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = 5 * time.Second
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 100 * time.Millisecond
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = max(5*time.Second, c.RetryMin)
	}
	if c.RetryWindow <= 0 {
		c.RetryWindow = c.AckTimeout / 2
	}
	if c.NackDelayMax <= 0 {
		c.NackDelayMax = time.Minute
	}
	return c
}

// Results counted by waypost_hub_tracking_feed_events_total.
const (
	resultAppended  = "appended"
	resultDuplicate = "duplicate"
	resultPoison    = "poison"
	resultRejected  = "rejected"
	resultNacked    = "nacked"
)

type feedMetrics struct {
	events       *prometheus.CounterVec
	appendErrors *prometheus.CounterVec
}

func newFeedMetrics(reg prometheus.Registerer) (feedMetrics, error) {
	var m feedMetrics
	var err, e error
	m.events, e = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "waypost_hub_tracking_feed_events_total",
		Help: "Tracking deliveries settled by the order feed, by result: appended, duplicate, poison (undecodable, acked and dropped), rejected (refused by the order centre, acked and dropped), nacked.",
	}, []string{"result"}))
	err = errors.Join(err, e)
	m.appendErrors, e = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "waypost_hub_tracking_feed_append_errors_total",
		Help: "Failed AppendTrack calls of the order feed, by gRPC code.",
	}, []string{"code"}))
	return m, errors.Join(err, e)
}

// OrderFeed consumes hub.TrackingTopic into the order centre's track.
type OrderFeed struct {
	q      queue.Queue
	client orderv1.OrderServiceClient
	cfg    FeedConfig
	logger *slog.Logger
	met    feedMetrics

	stopping  chan struct{}
	closeOnce sync.Once

	mu     sync.Mutex
	sub    queue.Subscription
	closed bool
}

// NewOrderFeed returns a feed from q to client; Start or Run subscribes it.
func NewOrderFeed(q queue.Queue, client orderv1.OrderServiceClient, cfg FeedConfig, logger *slog.Logger, reg prometheus.Registerer) (*OrderFeed, error) {
	if q == nil || client == nil {
		return nil, errors.New("tracking: order feed needs a queue and an order centre client")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	met, err := newFeedMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &OrderFeed{q: q, client: client, cfg: cfg.withDefaults(), logger: logger, met: met,
		stopping: make(chan struct{})}, nil
}

// Start subscribes the feed; deliveries are handled until Close. Calling it
// again is a no-op.
func (f *OrderFeed) Start(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return ErrFeedClosed
	}
	if f.sub != nil {
		return nil
	}
	sub, err := f.q.Subscribe(ctx, queue.SubscribeConfig{
		Topic: hub.TrackingTopic, Group: f.cfg.Group,
		AckTimeout: f.cfg.AckTimeout, MaxInFlight: f.cfg.MaxInFlight,
	}, f.handle)
	if err != nil {
		return fmt.Errorf("tracking: order feed: subscribe %s as %s: %w", hub.TrackingTopic, f.cfg.Group, err)
	}
	f.sub = sub
	f.logger.InfoContext(ctx, "tracking order feed started", "topic", hub.TrackingTopic, "group", f.cfg.Group)
	return nil
}

// Run starts the feed and blocks until Close is called or ctx ends; it
// returns nil then. Pair it with Close in lifecycle.Group.Add.
func (f *OrderFeed) Run(ctx context.Context) error {
	if err := f.Start(ctx); err != nil {
		return err
	}
	select {
	case <-f.stopping:
	case <-ctx.Done():
	}
	return nil
}

// Close stops taking deliveries, nacks those waiting to retry, and waits for
// running handlers until ctx is done; unsettled deliveries come back later.
func (f *OrderFeed) Close(ctx context.Context) error {
	f.closeOnce.Do(func() { close(f.stopping) })
	f.mu.Lock()
	f.closed = true
	sub := f.sub
	f.sub = nil
	f.mu.Unlock()
	if sub == nil {
		return nil
	}
	if err := sub.Close(ctx); err != nil {
		return fmt.Errorf("tracking: close order feed: %w", err)
	}
	return nil
}

// handle appends one event. Success and duplicates are acked; an event that
// cannot be decoded, or that the order centre refuses for good, is acked,
// logged and counted so it cannot block its waybill forever; anything else
// is retried in place for RetryWindow, then nacked.
func (f *OrderFeed) handle(ctx context.Context, d *queue.Delivery) {
	settle := context.WithoutCancel(ctx)
	ev, err := decodeEvent(d.Value)
	if err != nil {
		f.met.events.WithLabelValues(resultPoison).Inc()
		f.logger.WarnContext(ctx, "tracking feed: dropping undecodable event", "id", d.ID, "waybill", d.Key, "err", err)
		f.ack(settle, d)
		return
	}
	req := &orderv1.AppendTrackRequest{Events: []*orderv1.TrackEvent{trackEvent(ev)}}
	giveUp := time.Now().Add(f.cfg.RetryWindow)
	for attempt := 1; ; attempt++ {
		resp, err := f.appendTrack(ctx, req)
		if err == nil {
			result := resultAppended
			if resp.GetAppended() == 0 {
				result = resultDuplicate
			}
			f.met.events.WithLabelValues(result).Inc()
			f.ack(settle, d)
			return
		}
		code := status.Code(err)
		f.met.appendErrors.WithLabelValues(code.String()).Inc()
		if code == codes.AlreadyExists {
			f.met.events.WithLabelValues(resultDuplicate).Inc()
			f.ack(settle, d)
			return
		}
		if permanent(code) {
			f.met.events.WithLabelValues(resultRejected).Inc()
			f.logger.WarnContext(ctx, "tracking feed: order centre refused event, dropping it",
				"event", ev.EventID, "waybill", ev.Waybill, "code", ev.Code, "err", err)
			f.ack(settle, d)
			return
		}
		wait := jitter(expBackoff(f.cfg.RetryMin, f.cfg.RetryMax, attempt))
		if time.Now().Add(wait).After(giveUp) || !f.pause(ctx, wait) {
			delay := expBackoff(f.cfg.RetryMin, f.cfg.NackDelayMax, d.Attempt)
			f.met.events.WithLabelValues(resultNacked).Inc()
			f.logger.WarnContext(ctx, "tracking feed: append failed, redelivering later",
				"event", ev.EventID, "waybill", ev.Waybill, "attempt", d.Attempt, "calls", attempt, "retry_in", delay, "err", err)
			if err := d.Nack(settle, delay); err != nil {
				f.logger.WarnContext(ctx, "tracking feed: nack", "event", ev.EventID, "err", err)
			}
			return
		}
	}
}

func (f *OrderFeed) appendTrack(ctx context.Context, req *orderv1.AppendTrackRequest) (*orderv1.AppendTrackResponse, error) {
	cctx, cancel := context.WithTimeout(ctx, f.cfg.CallTimeout)
	defer cancel()
	return f.client.AppendTrack(cctx, req)
}

// pause waits d; it reports false when the feed is closing or ctx ends.
func (f *OrderFeed) pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-f.stopping:
		return false
	case <-ctx.Done():
		return false
	}
}

func (f *OrderFeed) ack(ctx context.Context, d *queue.Delivery) {
	if err := d.Ack(ctx); err != nil {
		f.logger.WarnContext(ctx, "tracking feed: ack", "id", d.ID, "err", err)
	}
}

// permanent reports whether an AppendTrack error will never go away by
// retrying the same event: a malformed event or an unknown waybill (a
// refused scan of a number the order centre never issued).
func permanent(c codes.Code) bool {
	switch c {
	case codes.InvalidArgument, codes.NotFound, codes.FailedPrecondition, codes.OutOfRange:
		return true
	}
	return false
}

// decodeEvent parses a delivery's payload and checks what AppendTrack needs.
func decodeEvent(b []byte) (hub.TrackingEvent, error) {
	var ev hub.TrackingEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		return ev, fmt.Errorf("decode tracking event: %w", err)
	}
	if err := validate(ev); err != nil {
		return ev, err
	}
	return ev, nil
}

// trackEvent maps a hub event to the order centre's.
func trackEvent(ev hub.TrackingEvent) *orderv1.TrackEvent {
	desc := ev.Description
	if desc == "" {
		desc = Describe(ev.Code)
	}
	return &orderv1.TrackEvent{
		EventId: ev.EventID, WaybillNo: ev.Waybill, EventCode: ev.Code, Station: ev.Station,
		EventTime: timestamppb.New(ev.At), Operator: ev.Operator, ReasonCode: ev.Reason,
		Description: desc,
	}
}
