package handler

import (
	"context"
	"errors"
	"maps"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/waypost/waypost/internal/platform/kv"
	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/dedup"
	"github.com/waypost/waypost/internal/push/limit"
	"github.com/waypost/waypost/internal/push/quiet"
)

// HeaderQuietUntil marks a task the quiet-hours stage republished: its value
// is the instant (RFC 3339) the task was delayed to. A delivery carrying it
// is not delayed again, and its age for expiry counts from that instant.
const HeaderQuietUntil = "push-quiet-until"

// ReasonExpired is the send_failed detail of a task older than its TTL.
const ReasonExpired = "expired"

// Stage names, as the stage metrics label them.
const (
	StageExpiry    = "expiry"
	StageDiscard   = "discard"
	StageQuiet     = "quiet"
	StageDedup     = "dedup"
	StageWhitelist = "whitelist"
	StageLimit     = "limit"
)

// job is one delivery on its way through the stages.
type job struct {
	c    *consumer
	d    *queue.Delivery
	task push.Task
	now  time.Time
	loc  *time.Location
	// quietDone marks a task the quiet-hours stage republished; released
	// is the instant it was delayed to.
	quietDone bool
	released  time.Time
	// redelivered: the task may have been handled before (a redelivery, or
	// a republished copy that a crash may have published twice), so some
	// receivers may be settled and dedup reads its first verdicts.
	redelivered bool
	// pending are the receivers still to decide or send.
	pending []string
}

// outcome of a stage.
type verdict int

const (
	proceed    verdict = iota // continue with j.pending
	settle                    // every receiver decided: ack
	handedBack                // the delivery was nacked
)

// stage is one rule of the pipeline.
type stage struct {
	name    string
	run     func(ctx context.Context, j *job) verdict
	seconds prometheus.Observer
	passed  prometheus.Counter
}

// ruleStages builds the pipeline in its fixed order.
func (h *Handler) ruleStages(m *metrics) []stage {
	mk := func(name string, run func(context.Context, *job) verdict) stage {
		return stage{name: name, run: run, seconds: m.stageSeconds.WithLabelValues(name),
			passed: m.stageReceivers.WithLabelValues(name, "pass")}
	}
	return []stage{
		mk(StageExpiry, h.expiry),
		mk(StageDiscard, h.discard),
		mk(StageQuiet, h.quietHours),
		mk(StageDedup, h.dedupe),
		mk(StageWhitelist, h.whitelist),
		mk(StageLimit, h.rateLimit),
	}
}

// runStages takes a task through every stage and then sends; it reports
// whether the delivery may be acked (otherwise it has been nacked).
func (h *Handler) runStages(ctx context.Context, c *consumer, d *queue.Delivery, task push.Task) bool {
	j := &job{c: c, d: d, task: task, now: h.now(), pending: task.Receivers}
	if v, ok := d.Headers[HeaderQuietUntil]; ok {
		j.quietDone, j.redelivered = true, true
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			j.released = t
		}
	}
	if d.Attempt > 1 {
		j.redelivered = true
	}
	if j.redelivered {
		pending, ok := h.unsettled(ctx, j)
		if !ok {
			return false
		}
		j.pending = pending
	}
	start := time.Now()
	for i := range h.stages {
		s := &h.stages[i]
		if len(j.pending) == 0 {
			return true
		}
		v := s.run(ctx, j)
		end := time.Now() // the next stage's start: one clock read per stage
		s.seconds.Observe(end.Sub(start).Seconds())
		start = end
		switch v {
		case settle:
			return true
		case handedBack:
			return false
		case proceed:
			s.passed.Add(float64(len(j.pending)))
		}
	}
	if len(j.pending) == 0 {
		return true
	}
	return h.deliver(ctx, c, d, task, j.pending)
}

// unsettled drops the receivers the ledger has settled (sent or failed) by
// an earlier delivery, so that no later stage records a refusal for a
// receiver that already got the message. A ledger error hands the task back.
func (h *Handler) unsettled(ctx context.Context, j *job) ([]string, bool) {
	out := make([]string, 0, len(j.pending))
	for _, rcv := range j.pending {
		v, err := h.ledger.Get(ctx, LedgerKey(j.task.MessageID, rcv))
		switch {
		case errors.Is(err, kv.ErrNotFound):
			out = append(out, rcv)
		case err != nil:
			h.log.Warn("ledger read of a redelivered task; handing it back", "messageId", j.task.MessageID, "err", err)
			h.nack(ctx, j.d, h.retryPolicy(j.task.Channel).Delay(j.d.Attempt, h.jitter()))
			return nil, false
		case string(v) == string(markSending):
			out = append(out, rcv) // the send stage sees who holds it
		}
	}
	return out, true
}

// refuse records state for the receivers in refused and keeps the others
// pending. Rule anchors carry a stable eventId (no attempt): a redelivery
// reaching the same verdict repeats the same event.
func (h *Handler) refuse(s string, j *job, state, detail string, refused func(rcv string) bool) {
	// kept is j.pending itself until the first refusal, so a stage that
	// refuses nobody (the common case) allocates nothing; after it, a copy,
	// since j.pending shares its array with the task's receivers.
	kept := j.pending
	n := 0
	for i, rcv := range j.pending {
		if !refused(rcv) {
			if n > 0 {
				kept = append(kept, rcv)
			}
			continue
		}
		if n == 0 {
			kept = append(make([]string, 0, len(j.pending)-1), j.pending[:i]...)
		}
		n++
		h.emit.emit(push.Anchor{
			EventID: j.task.MessageID + ":" + rcv + ":" + state, MessageID: j.task.MessageID,
			BusinessID: j.task.BusinessID, Receiver: rcv, State: state, At: h.now(), Detail: detail,
		})
	}
	if n > 0 {
		h.met.stageReceivers.WithLabelValues(s, state).Add(float64(n))
	}
	j.pending = kept
}

// refuseAll records state for every pending receiver.
func (h *Handler) refuseAll(s string, j *job, state, detail string) verdict {
	h.refuse(s, j, state, detail, func(string) bool { return true })
	return settle
}

// expiry fails every receiver of a task older than its message type's TTL:
// a verification code that arrives late is worse than none.
func (h *Handler) expiry(_ context.Context, j *job) verdict {
	ttl := h.rules.s.TTL.Get()[j.task.MsgType].D()
	if ttl <= 0 || j.task.CreatedAt.IsZero() {
		return proceed
	}
	since := j.task.CreatedAt
	if j.released.After(since) {
		since = j.released
	}
	if j.now.Sub(since) <= ttl {
		return proceed
	}
	h.log.Debug("task expired", "messageId", j.task.MessageID, "msgType", j.task.MsgType,
		"age", j.now.Sub(since).Round(time.Millisecond), "ttl", ttl)
	return h.refuseAll(StageExpiry, j, push.StateSendFailed, ReasonExpired)
}

// discard drops the tasks of templates on the discard list.
func (h *Handler) discard(_ context.Context, j *job) verdict {
	if _, ok := (*h.rules.discard.Load())[j.task.TemplateID]; ok {
		return h.refuseAll(StageDiscard, j, push.StateDiscarded, "")
	}
	return proceed
}

// zone returns the task's time zone, loaded once per job.
func (h *Handler) zone(j *job) *time.Location {
	if j.loc == nil {
		j.loc = h.rules.zones.get(j.task.TimeZone)
	}
	return j.loc
}

// quietHours applies the template's quiet policy. A delayed task is
// republished with NotBefore at the release instant, durably (Publish
// returns once the broker stored it), before the original is acked: a
// restart in between at worst leaves two copies, which the ledger and the
// dedup memo keep from sending twice.
func (h *Handler) quietHours(ctx context.Context, j *job) verdict {
	if j.quietDone || (j.task.Quiet != push.QuietDrop && j.task.Quiet != push.QuietDelay) {
		return proceed
	}
	dec := h.rules.quiet.Decide(j.now, h.zone(j), j.task.Quiet)
	switch dec.Action {
	case quiet.Drop:
		return h.refuseAll(StageQuiet, j, push.StateQuietDropped, "")
	case quiet.Delay:
		until := dec.Until.UTC().Format(time.RFC3339Nano)
		m := queue.Message{Topic: j.d.Topic, Key: j.d.Key, Value: j.d.Value, NotBefore: dec.Until,
			Headers: userHeaders(j.d.Headers)}
		m.Headers[HeaderQuietUntil] = until
		if err := h.q.Publish(ctx, m); err != nil {
			h.log.Warn("republish a quiet-delayed task; handing it back", "messageId", j.task.MessageID, "err", err)
			h.nack(ctx, j.d, h.retryPolicy(j.task.Channel).Delay(j.d.Attempt, h.jitter()))
			return handedBack
		}
		return h.refuseAll(StageQuiet, j, push.StateQuietDelayed, until)
	case quiet.Continue:
	}
	return proceed
}

// userHeaders copies a delivery's headers without the names the queue
// reserves for itself, which a publish refuses.
func userHeaders(h map[string]string) map[string]string {
	out := make(map[string]string, len(h)+1)
	for k, v := range maps.All(h) {
		l := strings.ToLower(k)
		if !strings.HasPrefix(l, "waypost-") && !strings.HasPrefix(l, "nats-") {
			out[k] = v
		}
	}
	return out
}

// dedupe runs content dedup and the frequency cap over the pending
// receivers in one batched call. A retried task skips it; a redelivered one
// gets its first delivery's verdicts.
func (h *Handler) dedupe(ctx context.Context, j *job) verdict {
	req := dedup.TaskRequest(j.task, h.zone(j), j.redelivered)
	req.Receivers = j.pending
	vs, err := h.rules.dedup.Check(ctx, req)
	if err != nil {
		// Only the context ending (shutdown) gets here: dedup fails open
		// on store errors. Hand the task back for whoever runs next.
		h.nack(ctx, j.d, h.cfg.RejectDelay)
		return handedBack
	}
	refused := 0
	for _, v := range vs {
		if v != dedup.Admit {
			refused++
		}
	}
	if refused == 0 {
		return proceed
	}
	byRcv := make(map[string]dedup.Verdict, refused)
	for i, v := range vs {
		if v != dedup.Admit {
			byRcv[req.Receivers[i]] = v
		}
	}
	for _, v := range []dedup.Verdict{dedup.ContentDeduplicated, dedup.FrequencyCapped} {
		h.refuse(StageDedup, j, v.State(), "", func(rcv string) bool { return byRcv[rcv] == v })
	}
	return proceed
}

// whitelist, when enabled, keeps only the listed receivers.
func (h *Handler) whitelist(_ context.Context, j *job) verdict {
	wl := h.rules.whitelist.Load()
	if !wl.enabled {
		return proceed
	}
	h.refuse(StageWhitelist, j, push.StateNotWhitelisted, "", func(rcv string) bool {
		_, ok := wl.allowed[rcv]
		return !ok
	})
	return proceed
}

// LimitKey is the rate-limit key of a task: its channel account, or the
// channel's name for a channel without accounts (inbox).
func LimitKey(t push.Task) string {
	if t.AccountID != "" {
		return t.AccountID
	}
	return string(t.Channel)
}

// rateLimit waits for the account's capacity. Past the limit's bounded wait
// it sends the receivers granted so far and hands the task back after the
// limiter's retry delay; the ledger skips the sent ones on redelivery.
func (h *Handler) rateLimit(ctx context.Context, j *job) verdict {
	key := LimitKey(j.task)
	lim := h.rules.s.Limits.Get().For(key)
	if lim.Unlimited() {
		return proceed
	}
	// A wait longer than the ack timeout would have the task redelivered
	// while it still waits.
	lim.MaxWait = min(lim.MaxWait, limit.Duration(h.cfg.AckTimeout/2))
	n := lim.Cost(len(j.pending))
	granted, err := h.rules.limiter.Wait(ctx, key, lim, n)
	if err == nil {
		return proceed
	}
	after, tooLong := limit.RetryAfter(err)
	if !tooLong {
		if ctx.Err() == nil { // not just a drain cutting the wait short
			h.log.Warn("rate limit wait failed; handing the task back", "messageId", j.task.MessageID, "key", key, "err", err)
		}
		h.nack(ctx, j.d, h.cfg.RejectDelay)
		return handedBack
	}
	h.met.stageReceivers.WithLabelValues(StageLimit, "handed_back").Add(float64(len(j.pending)))
	sendable := 0
	if granted > 0 {
		// Receivers mode grants receivers; requests mode grants the task.
		sendable = len(j.pending)
		if lim.Mode == limit.ModeReceivers {
			sendable = min(granted, len(j.pending))
		}
	}
	if sendable > 0 {
		h.sendSome(ctx, j.c, j.d, j.task, j.pending[:sendable])
	}
	h.nack(ctx, j.d, after)
	return handedBack
}
