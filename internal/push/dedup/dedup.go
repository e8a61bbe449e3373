// Package dedup is the push handler's deduplication stage: content dedup
// (the same template, receiver and rendered content at most num times in a
// sliding window) and then the frequency cap (at most num messages per
// receiver and channel per calendar day in the template's time zone).
//
// Both rules run on kv.Store sliding windows, so they are atomic on every
// backend and across instances sharing Redis. One Check decides a whole task
// in one kv round trip whatever its number of receivers: one AdmitPairs call
// (pipelined on Redis) decides both rules for every receiver, the cap only
// after content dedup admitted. A verdict memo is written only when a
// receiver was refused. When the kv store fails, dedup fails open: the
// receivers are admitted, and a metric and a rate-limited warning say so.
package dedup

import (
	"context"
	"crypto/md5"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"reflect"
	"strconv"
	"sync"
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
	k := newContentKeyer(templateID, content, 1, nil)
	return k.key(receiver)
}

// shortContent is the longest content a contentKeyer hashes again for each
// receiver; past it, the hash state after the content is saved once and
// restored for each receiver, so a long email body is hashed once per task.
const shortContent = 192

// contentKeyer makes a task's content keys.
type contentKeyer struct {
	// prefix is the template id, NUL, the content and NUL (short content).
	prefix []byte
	// h and state: the hash after the prefix and its saved state (long content).
	h     hash.Hash
	state []byte
}

// newContentKeyer returns the keyer of a task; buf, when not nil, is
// scratch space it may reuse.
func newContentKeyer(templateID int64, content string, receivers int, buf []byte) contentKeyer {
	var id [24]byte
	head := append(strconv.AppendInt(id[:0], templateID, 10), 0)
	if len(content) <= shortContent || receivers == 1 {
		return contentKeyer{prefix: append(append(append(buf[:0], head...), content...), 0)}
	}
	h := md5.New()
	h.Write(head)
	h.Write([]byte(content))
	h.Write([]byte{0})
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		panic("dedup: md5 state: " + err.Error()) // the standard md5 always marshals
	}
	return contentKeyer{h: h, state: state}
}

func (k *contentKeyer) key(receiver string) string {
	var sum [md5.Size]byte
	if k.h == nil {
		n := len(k.prefix)
		k.prefix = append(k.prefix, receiver...)
		sum = md5.Sum(k.prefix)
		k.prefix = k.prefix[:n]
	} else {
		if err := k.h.(encoding.BinaryUnmarshaler).UnmarshalBinary(k.state); err != nil {
			panic("dedup: md5 state: " + err.Error()) // its own marshalled state
		}
		k.h.Write([]byte(receiver))
		var long [md5.Size]byte // escapes through the interface: only on this path
		sum = [md5.Size]byte(k.h.Sum(long[:0]))
	}
	var b [len(KeyPrefix) + 2 + 2*md5.Size]byte
	return string(hex.AppendEncode(append(b[:0], KeyPrefix+"c:"...), sum[:]))
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
	return KeyPrefix + "f:" + string(ch) + ":" + dayName(dayStart) + ":"
}

func dayName(dayStart time.Time) string { return dayStart.Format("20060102-0700") }

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
// stage fails open. Calls to an in-process store (kv.InProcess), which
// never wait, are not bounded.
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
	// day is the calendar day the last Check fell on, so that most checks
	// neither compute the day's bounds nor format its name.
	day atomic.Pointer[day]
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
// every stage before it (the caller asks only for those). Both run in one
// kv.AdmitPairs call, atomic per receiver.
//
// A kv failure admits every receiver (fail open). The error is non-nil only
// for an invalid request or when ctx ends; the caller then hands the task
// back.
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
	refused, err := d.decide(ctx, req, ru, out)
	if err != nil {
		return nil, err
	}
	if refused {
		if err := d.writeMemo(ctx, req, out); err != nil {
			return nil, err
		}
	}
	d.met.count(out)
	return out, nil
}

// decide runs both rules over every receiver as one pair of windows each:
// the content window, then the daily cap.
//
// The cap is a window too, which makes it atomic and batched like content
// dedup and keyed by message so a message never counts twice. Every entry
// of a day is scored at local midnight and the window reaches from there to
// the end of the day: nothing is ever pruned within the day, and the key
// expires when the day ends. A new day is a new key.
//
// A pair admits a message already in a window without counting it again,
// so a redelivery without a memo (every receiver was admitted, or the memo
// was lost) gets the verdicts its first check left. It reports whether any
// receiver was refused.
func (d *Deduper) decide(ctx context.Context, req Request, ru rules, out []Verdict) (bool, error) {
	now := d.now()
	sc := scratchPool.Get().(*scratch)
	defer sc.put()
	var keyer contentKeyer
	if ru.contentNum > 0 {
		keyer = newContentKeyer(req.TemplateID, req.Content, len(req.Receivers), sc.buf)
		defer func() { sc.buf = keyer.prefix }()
	}
	var today *day
	if ru.frequencyNum > 0 {
		today = d.today(now, req.Location)
	}
	reqs := sc.pairs(len(req.Receivers))
	for i, rcv := range req.Receivers {
		var content, freq kv.WindowRequest
		if ru.contentNum > 0 {
			content = kv.WindowRequest{Key: keyer.key(rcv), Member: req.MessageID,
				Now: now, Window: ru.contentWindow, Limit: ru.contentNum}
		}
		if today != nil {
			freq = kv.WindowRequest{Key: KeyPrefix + "f:" + string(req.Channel) + ":" + today.name + ":" + rcv,
				Member: req.MessageID, Now: today.start, Window: today.end.Sub(now), Limit: ru.frequencyNum}
		}
		if content.Key == "" {
			reqs[i].First = freq
		} else {
			reqs[i] = kv.PairRequest{First: content, Second: freq}
		}
	}
	res, err := d.admitPairs(ctx, reqs)
	if err != nil {
		return false, d.failOpen(ctx, ru, req, err)
	}
	refused := false
	for i, r := range res {
		switch {
		case r == kv.PairAdmitted:
			continue
		case r == kv.FirstRefused && ru.contentNum > 0:
			out[i] = ContentDeduplicated
		default: // the cap refused: as second window, or as the only one
			out[i] = FrequencyCapped
		}
		refused = true
	}
	return refused, nil
}

// scratch is the reusable memory of one decide: the pair requests and the
// content keyer's buffer, which a task needs only while it is decided.
type scratch struct {
	reqs []kv.PairRequest
	buf  []byte
}

// maxScratch bounds what a scratch keeps for the next task, so that one
// huge task does not pin its memory in the pool.
const maxScratch = 1024

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func (s *scratch) pairs(n int) []kv.PairRequest {
	if cap(s.reqs) < n {
		s.reqs = make([]kv.PairRequest, n)
	}
	return s.reqs[:n]
}

func (s *scratch) put() {
	if cap(s.reqs) > maxScratch || cap(s.buf) > 16*maxScratch {
		return
	}
	clear(s.reqs[:cap(s.reqs)]) // the keys are the store's now, or garbage
	scratchPool.Put(s)
}

// admitPairs runs the pairs under the call timeout, unless the store is
// in-process and cannot outlast it.
func (d *Deduper) admitPairs(ctx context.Context, reqs []kv.PairRequest) ([]kv.PairResult, error) {
	if _, ok := d.kv.(kv.InProcess); ok {
		return d.kv.AdmitPairs(ctx, reqs)
	}
	cctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	return d.kv.AdmitPairs(cctx, reqs)
}

// day is one calendar day in one zone: its bounds and its name in keys.
type day struct {
	loc        *time.Location
	start, end time.Time
	name       string
}

// today returns now's calendar day in loc; a DST day is 23 or 25 hours long.
func (d *Deduper) today(now time.Time, loc *time.Location) *day {
	if loc == nil {
		loc = time.UTC
	}
	if c := d.day.Load(); c != nil && c.loc == loc && !now.Before(c.start) && now.Before(c.end) {
		return c
	}
	start, end := dayBounds(now, loc)
	c := &day{loc: loc, start: start, end: end, name: dayName(start)}
	d.day.Store(c)
	return c
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

// failOpen admits every receiver after a kv error, unless the caller's ctx
// ended, which is returned instead. The metric counts the receivers of each
// rule that went unchecked.
func (d *Deduper) failOpen(ctx context.Context, ru rules, req Request, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("dedup of message %s: %w", req.MessageID, cerr)
	}
	n := len(req.Receivers)
	stage := "content"
	switch {
	case ru.contentNum > 0 && ru.frequencyNum > 0:
		d.met.failOpen.WithLabelValues("content").Add(float64(n))
		d.met.failOpen.WithLabelValues("frequency").Add(float64(n))
		stage = "content+frequency"
	case ru.contentNum > 0:
		d.met.failOpen.WithLabelValues("content").Add(float64(n))
	default:
		d.met.failOpen.WithLabelValues("frequency").Add(float64(n))
		stage = "frequency"
	}
	if ok, held := d.warn.allow(d.now()); ok {
		d.log.WarnContext(ctx, "dedup failing open: kv store unavailable, receivers admitted unchecked",
			slog.String("stage", stage), slog.String("messageId", req.MessageID), slog.Int("receivers", n),
			slog.Int("warningsHeldBack", held), slog.Any("err", err))
	}
	return nil
}
