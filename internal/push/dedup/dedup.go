// Package dedup is the push handler's deduplication stage: content dedup
// (the same template, receiver and rendered content at most num times in a
// sliding window) and then the frequency cap (at most num messages per
// receiver and channel per calendar day in the template's time zone).
//
// Both rules run on kv.Store sliding windows, so they are atomic on every
// backend and across instances sharing Redis. One Check decides a whole task
// in at most three kv round trips whatever its number of receivers: one
// AdmitBatch per rule (pipelined on Redis) and one write of the verdict memo.
// When the kv store fails, dedup fails open: the receivers are admitted, and
// a metric and a rate-limited warning say so.
package dedup

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"reflect"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/waypost/waypost/internal/platform/kv"
	"github.com/waypost/waypost/internal/push"
)

// ErrInvalidRequest is returned for a request Check cannot key (no message id).
var ErrInvalidRequest = errors.New("invalid dedup request")

// KeyPrefix is the namespace of every key dedup writes; the kv backend adds
// its own environment prefix in front.
const KeyPrefix = "push:dedup:"

// Defaults of the Options.
const (
	DefaultTimeout  = time.Second
	DefaultMemoTTL  = time.Hour
	DefaultLogEvery = 10 * time.Second
)

// Verdict is the outcome for one receiver.
type Verdict uint8

// Verdicts, in the order the stages run.
const (
	Admit Verdict = iota
	ContentDeduplicated
	FrequencyCapped
)

// String names the verdict as metrics label it.
func (v Verdict) String() string {
	switch v {
	case ContentDeduplicated:
		return push.StateContentDeduplicated
	case FrequencyCapped:
		return push.StateFrequencyCapped
	}
	return "admit"
}

// State is the anchor state the verdict records; Admit records none.
func (v Verdict) State() string {
	if v == Admit {
		return ""
	}
	return v.String()
}

// Request is one task's dedup question.
type Request struct {
	// MessageID identifies the message; it is the window member, so a
	// message never counts twice against one window.
	MessageID  string
	TemplateID int64
	Channel    push.Channel
	MsgType    push.MsgType
	// Location is the template's time zone, where the calendar day of the
	// frequency cap begins and ends (nil: UTC).
	Location *time.Location
	// Content is the rendered content; see TaskContent.
	Content   string
	Receivers []string
	// Retry marks a task the handler retries after a failed send: it skips
	// dedup entirely and every receiver is admitted.
	Retry bool
	// Redelivered marks a delivery of the task after the first (the queue's
	// attempt > 1): its receivers get the verdicts the first check recorded.
	Redelivered bool
}

// TaskContent is the rendered content of a task as content dedup compares it.
func TaskContent(t push.Task) string { return t.Subject + "\x00" + t.Text + "\x00" + t.HTML }

// TaskRequest builds the request for a task whose time zone the caller has
// loaded; redelivered is whether the queue delivered it before.
func TaskRequest(t push.Task, loc *time.Location, redelivered bool) Request {
	return Request{
		MessageID: t.MessageID, TemplateID: t.TemplateID, Channel: t.Channel, MsgType: t.MsgType,
		Location: loc, Content: TaskContent(t), Receivers: t.Receivers,
		Retry: t.Retry > 0, Redelivered: redelivered,
	}
}

// ContentKey is the content window of one template, content and receiver:
// md5 over the three, separated by NUL so that no two triples collide.
func ContentKey(templateID int64, receiver, content string) string {
	return newContentKeyer(templateID, content).key(receiver)
}

// contentKeyer hashes a task's template id and content once and each
// receiver after them, so a long email body is hashed once per task rather
// than once per receiver.
type contentKeyer struct{ prefix hash.Cloner }

func newContentKeyer(templateID int64, content string) contentKeyer {
	h := md5.New().(hash.Cloner) // every standard library hash is a Cloner
	var buf [24]byte
	h.Write(append(strconv.AppendInt(buf[:0], templateID, 10), 0))
	h.Write([]byte(content))
	h.Write([]byte{0})
	return contentKeyer{prefix: h}
}

func (k contentKeyer) key(receiver string) string {
	c, _ := k.prefix.Clone() // md5 cannot fail to clone
	c.Write([]byte(receiver))
	var sum [md5.Size]byte
	b := make([]byte, 0, len(KeyPrefix)+2+2*md5.Size)
	b = append(b, KeyPrefix+"c:"...)
	return string(hex.AppendEncode(b, c.Sum(sum[:0])))
}

// FrequencyKey is the daily window of one receiver and channel on the
// calendar day starting at dayStart (local midnight). The day is named by its
// date and UTC offset ("20260501+0800"): zones that agree on both share the
// day, and a day of another offset, which begins and ends at other instants,
// is another key.
func FrequencyKey(ch push.Channel, dayStart time.Time, receiver string) string {
	return frequencyKeyPrefix(ch, dayStart) + receiver
}

func frequencyKeyPrefix(ch push.Channel, dayStart time.Time) string {
	return KeyPrefix + "f:" + string(ch) + ":" + dayStart.Format("20060102-0700") + ":"
}

// memoKey holds the verdicts of one message for its redeliveries.
func memoKey(messageID string) string { return KeyPrefix + "m:" + messageID }

// Option configures a Deduper.
type Option func(*Deduper)

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option {
	return func(d *Deduper) {
		if now != nil {
			d.now = now
		}
	}
}

// WithTimeout bounds each kv call (default DefaultTimeout); past it the
// stage fails open.
func WithTimeout(t time.Duration) Option {
	return func(d *Deduper) {
		if t > 0 {
			d.timeout = t
		}
	}
}

// WithMemoTTL sets how long a message's verdicts are kept for its
// redeliveries (default DefaultMemoTTL).
func WithMemoTTL(t time.Duration) Option {
	return func(d *Deduper) {
		if t > 0 {
			d.memoTTL = t
		}
	}
}

// WithLogEvery sets the least time between two fail-open warnings (default
// DefaultLogEvery); the next one says how many it held back.
func WithLogEvery(t time.Duration) Option {
	return func(d *Deduper) {
		if t > 0 {
			d.warn.every = t
		}
	}
}

// Deduper is the dedup stage. It is safe for concurrent use; Set replaces
// the settings for every later Check.
type Deduper struct {
	kv      kv.Store
	cfg     atomic.Pointer[resolved]
	now     func() time.Time
	timeout time.Duration
	memoTTL time.Duration
	log     *slog.Logger
	warn    warnLimiter
	met     *metrics
}

// New returns a Deduper over store with settings s. A nil logger discards;
// a nil registerer registers nowhere.
func New(store kv.Store, s Settings, logger *slog.Logger, reg prometheus.Registerer, opts ...Option) (*Deduper, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	met, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("dedup: register metrics: %w", err)
	}
	d := &Deduper{
		kv: store, now: time.Now, timeout: DefaultTimeout, memoTTL: DefaultMemoTTL,
		log: logger, warn: warnLimiter{every: DefaultLogEvery}, met: met,
	}
	for _, o := range opts {
		o(d)
	}
	d.cfg.Store(resolve(s))
	return d, nil
}

// Set validates s and makes it the settings of every later Check.
func (d *Deduper) Set(s Settings) error {
	if err := s.Validate(); err != nil {
		return err
	}
	old := d.cfg.Swap(resolve(s))
	if reflect.DeepEqual(old.settings, s) {
		return nil // a settings poll that found nothing new
	}
	d.log.Info("dedup settings changed", slog.Any("content", s.Content), slog.Any("frequency", s.Frequency),
		slog.Any("frequencyExempt", s.FrequencyExempt), slog.Int("overrides", len(s.MsgTypes)))
	return nil
}

// Settings returns the settings in force.
func (d *Deduper) Settings() Settings { return d.cfg.Load().settings }

// Check decides every receiver of req and returns one verdict per receiver,
// in order. Content dedup runs first; the frequency cap then sees only the
// receivers it admitted, so the daily count holds only messages that passed
// every stage before it (the caller asks only for those).
//
// A kv failure admits the receivers of the failing stage (fail open). The
// error is non-nil only for an invalid request or when ctx ends; the caller
// then hands the task back.
//
// Call Check once per delivery with all the receivers still to decide: the
// memo a first delivery writes is what a redelivery reads.
func (d *Deduper) Check(ctx context.Context, req Request) ([]Verdict, error) {
	out := make([]Verdict, len(req.Receivers))
	if req.Retry || len(req.Receivers) == 0 {
		return out, nil
	}
	if req.MessageID == "" {
		return nil, fmt.Errorf("dedup: template %d: empty message id: %w", req.TemplateID, ErrInvalidRequest)
	}
	ru := d.cfg.Load().For(req.MsgType)
	if ru.contentNum == 0 && ru.frequencyNum == 0 {
		d.met.count(out)
		return out, nil
	}
	if req.Redelivered {
		ok, err := d.readMemo(ctx, req, out)
		if err != nil {
			return nil, err
		}
		if ok {
			d.met.count(out)
			return out, nil
		}
	}
	now := d.now()
	if ru.contentNum > 0 {
		if err := d.content(ctx, req, ru, now, out); err != nil {
			return nil, err
		}
	}
	if ru.frequencyNum > 0 {
		if err := d.frequency(ctx, req, ru, now, out); err != nil {
			return nil, err
		}
	}
	if err := d.writeMemo(ctx, req, out); err != nil {
		return nil, err
	}
	d.met.count(out)
	return out, nil
}

// content runs content dedup over every receiver.
func (d *Deduper) content(ctx context.Context, req Request, ru rules, now time.Time, out []Verdict) error {
	keyer := newContentKeyer(req.TemplateID, req.Content)
	reqs := make([]kv.WindowRequest, len(req.Receivers))
	for i, rcv := range req.Receivers {
		reqs[i] = kv.WindowRequest{
			Key: keyer.key(rcv), Member: req.MessageID,
			Now: now, Window: ru.contentWindow, Limit: ru.contentNum,
		}
	}
	res, err := d.admit(ctx, reqs)
	if err != nil {
		return d.failOpen(ctx, "content", req, len(reqs), err)
	}
	for i, r := range res {
		if !r.Admitted {
			out[i] = ContentDeduplicated
		}
	}
	return nil
}

// frequency runs the daily cap over the receivers content dedup admitted.
//
// The cap is a window too, which makes it atomic and batched like content
// dedup and keyed by message so a message never counts twice. Every entry
// of a day is scored at local midnight and the window reaches from there to
// the end of the day: nothing is ever pruned within the day, and the key
// expires when the day ends. A new day is a new key.
func (d *Deduper) frequency(ctx context.Context, req Request, ru rules, now time.Time, out []Verdict) error {
	start, end := dayBounds(now, req.Location)
	prefix := frequencyKeyPrefix(req.Channel, start)
	idx := make([]int, 0, len(req.Receivers))
	reqs := make([]kv.WindowRequest, 0, len(req.Receivers))
	for i, rcv := range req.Receivers {
		if out[i] != Admit {
			continue
		}
		idx = append(idx, i)
		reqs = append(reqs, kv.WindowRequest{
			Key: prefix + rcv, Member: req.MessageID,
			Now: start, Window: end.Sub(now), Limit: ru.frequencyNum,
		})
	}
	if len(reqs) == 0 {
		return nil
	}
	res, err := d.admit(ctx, reqs)
	if err != nil {
		return d.failOpen(ctx, "frequency", req, len(reqs), err)
	}
	for j, r := range res {
		if !r.Admitted {
			out[idx[j]] = FrequencyCapped
		}
	}
	return nil
}

// dayBounds returns local midnight at the start of now's day in loc and at
// its end; a DST day is 23 or 25 hours long.
func dayBounds(now time.Time, loc *time.Location) (start, end time.Time) {
	if loc == nil {
		loc = time.UTC
	}
	y, m, dd := now.In(loc).Date()
	return time.Date(y, m, dd, 0, 0, 0, 0, loc), time.Date(y, m, dd+1, 0, 0, 0, 0, loc)
}

// admit runs one batch under the call timeout.
func (d *Deduper) admit(ctx context.Context, reqs []kv.WindowRequest) ([]kv.WindowResult, error) {
	cctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	return d.kv.AdmitBatch(cctx, reqs)
}

// failOpen admits the stage's receivers after a kv error, unless the
// caller's ctx ended, which is returned instead.
func (d *Deduper) failOpen(ctx context.Context, stage string, req Request, n int, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("dedup %s of message %s: %w", stage, req.MessageID, cerr)
	}
	d.met.failOpen.WithLabelValues(stage).Add(float64(n))
	if ok, held := d.warn.allow(d.now()); ok {
		d.log.WarnContext(ctx, "dedup failing open: kv store unavailable, receivers admitted unchecked",
			slog.String("stage", stage), slog.String("messageId", req.MessageID), slog.Int("receivers", n),
			slog.Int("warningsHeldBack", held), slog.Any("err", err))
	}
	return nil
}
