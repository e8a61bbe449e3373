package dedup

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/waypost/waypost/internal/platform/kv"
	platmetrics "github.com/waypost/waypost/internal/platform/metrics"
)

// memo is what a first check that refused a receiver records for the
// message's redeliveries: the receivers it refused, by stage. Every
// receiver not listed was admitted.
//
// Admissions need no memo: a pair of windows admits a message already in
// it as it is, so a redelivery is never refused by its own entries. A
// refusal does: once the content window has passed or the day has turned,
// a redelivery checked again would be admitted although its receivers were
// already recorded as refused. The memo keeps the first verdicts.
type memo struct {
	Content   []string `json:"c,omitempty"`
	Frequency []string `json:"f,omitempty"`
}

// readMemo fills out from the message's memo and reports whether there was
// one. A missing or unreadable memo (the first delivery died before it
// checked, or the kv store failed) means checking again.
func (d *Deduper) readMemo(ctx context.Context, req Request, out []Verdict) (bool, error) {
	cctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	b, err := d.kv.Get(cctx, memoKey(req.MessageID))
	switch {
	case errors.Is(err, kv.ErrNotFound):
		return false, nil
	case err != nil:
		if cerr := ctx.Err(); cerr != nil {
			return false, cerr
		}
		d.memoError(ctx, "read", req, err)
		return false, nil
	}
	var m memo
	if err := json.Unmarshal(b, &m); err != nil {
		d.memoError(ctx, "read", req, err)
		return false, nil
	}
	refused := make(map[string]Verdict, len(m.Content)+len(m.Frequency))
	for _, r := range m.Content {
		refused[r] = ContentDeduplicated
	}
	for _, r := range m.Frequency {
		refused[r] = FrequencyCapped
	}
	for i, r := range req.Receivers {
		out[i] = refused[r] // Admit when absent
	}
	return true, nil
}

// writeMemo records the verdicts; failing to is logged and counted but does
// not change them (a redelivery then checks again).
func (d *Deduper) writeMemo(ctx context.Context, req Request, out []Verdict) error {
	var m memo
	for i, v := range out {
		switch v {
		case ContentDeduplicated:
			m.Content = append(m.Content, req.Receivers[i])
		case FrequencyCapped:
			m.Frequency = append(m.Frequency, req.Receivers[i])
		case Admit:
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err // cannot happen for two string slices
	}
	cctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	if err := d.kv.Set(cctx, memoKey(req.MessageID), b, d.memoTTL); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		d.memoError(ctx, "write", req, err)
	}
	return nil
}

func (d *Deduper) memoError(ctx context.Context, op string, req Request, err error) {
	d.met.memoErrors.WithLabelValues(op).Inc()
	if ok, held := d.warn.allow(d.now()); ok {
		d.log.WarnContext(ctx, "dedup verdict memo "+op+" failed; a redelivery will check again",
			slog.String("messageId", req.MessageID), slog.Int("warningsHeldBack", held), slog.Any("err", err))
	}
}

// warnLimiter lets one warning through per interval and counts the rest, so
// a kv outage at thousands of tasks a second does not flood the log.
type warnLimiter struct {
	every time.Duration
	mu    sync.Mutex
	last  time.Time
	held  int
}

// allow reports whether to log now, and how many warnings it held back since
// the last one it allowed.
func (w *warnLimiter) allow(now time.Time) (bool, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.last.IsZero() && now.Sub(w.last) < w.every {
		w.held++
		return false, 0
	}
	held := w.held
	w.last, w.held = now, 0
	return true, held
}

// metrics are the stage's collectors.
type metrics struct {
	failOpen   *prometheus.CounterVec
	memoErrors *prometheus.CounterVec
	verdicts   [FrequencyCapped + 1]prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	failOpen, err := platmetrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "waypost", Subsystem: "push_dedup", Name: "fail_open_total",
		Help: "Receivers admitted unchecked because the kv store failed, by stage: content, frequency."},
		[]string{"stage"}))
	if err != nil {
		return nil, err
	}
	memoErrors, err := platmetrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "waypost", Subsystem: "push_dedup", Name: "memo_errors_total",
		Help: "Failed reads and writes of the verdict memo redeliveries use, by op."}, []string{"op"}))
	if err != nil {
		return nil, err
	}
	verdicts, err := platmetrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "waypost", Subsystem: "push_dedup", Name: "verdicts_total",
		Help: "Receivers checked, by verdict: admit, content_deduplicated, frequency_capped."}, []string{"verdict"}))
	if err != nil {
		return nil, err
	}
	m := &metrics{failOpen: failOpen, memoErrors: memoErrors}
	for v := range m.verdicts {
		m.verdicts[v] = verdicts.WithLabelValues(Verdict(v).String())
	}
	return m, nil
}

// count adds one task's verdicts.
func (m *metrics) count(out []Verdict) {
	var n [len(m.verdicts)]int
	for _, v := range out {
		n[v]++
	}
	for v, c := range n {
		if c > 0 {
			m.verdicts[v].Add(float64(c))
		}
	}
}
