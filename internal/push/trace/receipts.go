package trace

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/trace/receipt"
)

// Rejection codes of single receipts, in RecordResult.
const (
	CodeUnknownMessage  = "unknown_message"
	CodeUnknownReceiver = "unknown_receiver"
)

// Rejected is a receipt that was not recorded, and why.
type Rejected struct {
	Index     int    `json:"index"`
	MessageID string `json:"messageId"`
	Receiver  string `json:"receiver"`
	Code      string `json:"code"`
	Message   string `json:"message"`
}

// RecordResult says what became of a batch of receipts.
type RecordResult struct {
	Recorded int        `json:"recorded"`
	Rejected []Rejected `json:"rejected"`
}

// Recorder turns receipts into delivered/undelivered anchors on
// push.TraceTopic, where both consumer groups pick them up like any other.
type Recorder struct {
	q      queue.Queue
	reader *Reader
	now    func() time.Time
}

// NewRecorder returns a Recorder publishing to q; it looks the receipts'
// messages up through r. now may be nil (time.Now).
func NewRecorder(q queue.Queue, r *Reader, now func() time.Time) *Recorder {
	if now == nil {
		now = time.Now
	}
	return &Recorder{q: q, reader: r, now: now}
}

// receiptEventID is stable for a (receiver, state), so a provider that
// reports the same receipt twice records it once; the receiver is hashed to
// fit the eventId column.
func receiptEventID(rcv, state string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(rcv))
	return "receipt." + state + "." + strconv.FormatUint(h.Sum64(), 36)
}

// Record validates every receipt (an invalid one fails the whole batch with
// receipt.ErrInvalid), then records those whose message and receiver the
// trace knows; the others are returned as rejected. A publish failure wraps
// queue.ErrUnavailable and records nothing.
func (r *Recorder) Record(ctx context.Context, rs []receipt.Receipt) (RecordResult, error) {
	for i, rc := range rs {
		if err := rc.Validate(); err != nil {
			return RecordResult{}, fmt.Errorf("receipts[%d]: %w", i, err)
		}
	}
	res := RecordResult{Rejected: []Rejected{}}
	var anchors []push.Anchor
	for i, rc := range rs {
		evs, known, err := r.reader.MessageReceiver(ctx, rc.MessageID, rc.Receiver)
		if err != nil {
			return RecordResult{}, err
		}
		if !known {
			res.Rejected = append(res.Rejected, Rejected{Index: i, MessageID: rc.MessageID, Receiver: rc.Receiver,
				Code: CodeUnknownMessage, Message: "no trace of message " + rc.MessageID})
			continue
		}
		if len(evs) == 0 {
			res.Rejected = append(res.Rejected, Rejected{Index: i, MessageID: rc.MessageID, Receiver: rc.Receiver,
				Code: CodeUnknownReceiver, Message: fmt.Sprintf("message %s has no receiver %q", rc.MessageID, rc.Receiver)})
			continue
		}
		var businessID string
		for _, e := range evs {
			if e.BusinessID != "" {
				businessID = e.BusinessID
				break
			}
		}
		at := rc.At
		if at.IsZero() {
			at = r.now()
		}
		anchors = append(anchors, push.Anchor{EventID: receiptEventID(rc.Receiver, rc.State), MessageID: rc.MessageID,
			BusinessID: businessID, Receiver: rc.Receiver, State: rc.State, At: at.UTC(), Detail: rc.Detail})
	}
	if len(anchors) == 0 {
		return res, nil
	}
	v, err := json.Marshal(anchors)
	if err != nil {
		return RecordResult{}, fmt.Errorf("trace: encode receipts: %w", err)
	}
	if err := r.q.Publish(ctx, queue.Message{Topic: push.TraceTopic, Key: anchors[0].MessageID, Value: v}); err != nil {
		return RecordResult{}, fmt.Errorf("trace: publish %d receipts: %w", len(anchors), errors.Join(queue.ErrUnavailable, err))
	}
	res.Recorded = len(anchors)
	return res, nil
}

// maxKept bounds the receipts a Polling holds while the queue is down.
const maxKept = 10_000

// Polling asks channels that implement receipt.Poller for their receipts at
// an interval and records them. Receipts it could not record (the queue was
// down) are kept and offered again, up to maxKept per poller.
type Polling struct {
	rec     *Recorder
	pollers map[string]receipt.Poller
	every   time.Duration
	log     *slog.Logger

	mu   sync.Mutex
	kept map[string][]receipt.Receipt

	stopOnce sync.Once
	stop     chan struct{}
}

// NewPolling polls each of pollers (by name, e.g. the channel) every
// interval. logger may be nil.
func NewPolling(rec *Recorder, pollers map[string]receipt.Poller, every time.Duration, logger *slog.Logger) *Polling {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if every <= 0 {
		every = 30 * time.Second
	}
	return &Polling{rec: rec, pollers: pollers, every: every, log: logger,
		kept: map[string][]receipt.Receipt{}, stop: make(chan struct{})}
}

// Run polls until ctx is done or Close is called.
func (p *Polling) Run(ctx context.Context) error {
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.stop:
			return nil
		case <-t.C:
			p.PollOnce(ctx)
		}
	}
}

// Close stops Run.
func (p *Polling) Close() { p.stopOnce.Do(func() { close(p.stop) }) }

// PollOnce polls every poller once and records what they return.
func (p *Polling) PollOnce(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, name := range slices.Sorted(maps.Keys(p.pollers)) {
		got, err := p.pollers[name].PollReceipts(ctx)
		if err != nil {
			p.log.WarnContext(ctx, "trace: poll receipts", "poller", name, "err", err)
		}
		rs := append(p.kept[name], got...)
		delete(p.kept, name)
		if len(rs) == 0 {
			continue
		}
		// Invalid ones would fail every retry of the batch.
		valid := rs[:0]
		for _, r := range rs {
			if err := r.Validate(); err != nil {
				p.log.WarnContext(ctx, "trace: dropping invalid receipt", "poller", name, "messageId", r.MessageID, "err", err)
				continue
			}
			valid = append(valid, r)
		}
		res, err := p.rec.Record(ctx, valid)
		if err != nil {
			if len(valid) > maxKept {
				p.log.ErrorContext(ctx, "trace: dropping receipts kept too long", "poller", name, "dropped", len(valid)-maxKept)
				valid = valid[len(valid)-maxKept:]
			}
			p.kept[name] = valid
			p.log.WarnContext(ctx, "trace: record receipts; retrying at the next poll", "poller", name, "count", len(valid), "err", err)
			continue
		}
		for _, rj := range res.Rejected {
			p.log.InfoContext(ctx, "trace: receipt rejected", "poller", name, "messageId", rj.MessageID, "code", rj.Code)
		}
	}
}
