package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/waypost/waypost/internal/platform/kv"
	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/channel"
	"github.com/waypost/waypost/internal/push/rules"
)

// Ledger values of a receiver's key.
var (
	markSending = []byte("sending")
	markSent    = []byte("sent")
	markFailed  = []byte("failed")
)

// ReasonRetriesExhausted is the send_failed detail of a receiver that still
// failed transiently on its last allowed attempt.
const ReasonRetriesExhausted = "retries_exhausted"

// LedgerKey is the send-ledger key of one receiver of one message.
func LedgerKey(messageID, receiver string) string {
	return "push:ledger:" + messageID + ":" + receiver
}

// outcome is where one receiver stands after an attempt.
type outcome int

const (
	settled outcome = iota // sent, failed or skipped: nothing more to do
	retry                  // transient failure: ledger cleared, try again later
	busy                   // another attempt holds the receiver: look again later
)

// handle runs one delivery through c's pool.
func (h *Handler) handle(ctx context.Context, c *consumer, d *queue.Delivery) {
	if err := c.pool.acquire(ctx); err != nil {
		h.nack(ctx, d, h.cfg.RejectDelay)
		return
	}
	start := time.Now()
	defer func() { c.pool.release(time.Since(start)) }()
	var task push.Task
	if err := json.Unmarshal(d.Value, &task); err != nil || task.MessageID == "" {
		// A task that cannot be read never will be; redelivering it would
		// loop forever, so it is logged and dropped.
		h.log.Error("drop malformed task", "topic", d.Topic, "id", d.ID, "err", err)
		h.ack(ctx, d)
		return
	}
	var ok bool
	if h.rules != nil {
		ok = h.runStages(ctx, c, d, task)
	} else {
		ok = h.deliver(ctx, c, d, task, task.Receivers)
	}
	if ok {
		h.ack(ctx, d)
	}
}

// retryPolicy is ch's policy: push.retry, or the Config without live settings.
func (h *Handler) retryPolicy(ch push.Channel) rules.RetryPolicy {
	if h.rules != nil {
		return h.rules.s.Retry.Get().For(ch)
	}
	return h.cfg.retryPolicy(ch)
}

// jitter draws the random part of a backoff; Config.Jitter replaces it in tests.
func (h *Handler) jitter() float64 { return h.cfg.Jitter() }

// deliver sends task to receivers and reports whether the delivery may be
// acked; otherwise it has been nacked.
func (h *Handler) deliver(ctx context.Context, c *consumer, d *queue.Delivery, task push.Task, receivers []string) bool {
	pol := h.retryPolicy(task.Channel)
	sender, err := h.senders.Resolve(ctx, task)
	if err != nil {
		if !channel.IsPermanent(err) {
			h.log.Warn("resolve sender; retrying task", "messageId", task.MessageID, "channel", task.Channel, "err", err)
			h.nack(ctx, d, pol.Delay(d.Attempt, h.jitter()))
			return false
		}
		sender = failing{err: err}
	}
	var retries []string
	var lastErr error
	waiting := false
	keep := context.WithoutCancel(ctx)
	for _, rcv := range receivers {
		if ctx.Err() != nil {
			// Draining past its bound: hand the task back so the receivers
			// not yet settled are redelivered.
			h.nack(ctx, d, h.cfg.RejectDelay)
			return false
		}
		out, err := h.sendOne(ctx, keep, d, task, sender, rcv)
		switch out {
		case retry:
			retries = append(retries, rcv)
			lastErr = err
		case busy:
			waiting = true
		case settled:
		}
	}
	if len(retries) > 0 {
		failures := h.countFailure(ctx, task.MessageID, d.Attempt)
		if failures >= pol.MaxAttempts {
			for _, rcv := range retries {
				h.giveUp(ctx, task, d.Attempt, rcv, lastErr)
			}
		} else {
			h.nack(ctx, d, pol.Delay(failures, h.jitter()))
			return false
		}
	}
	if waiting {
		h.nack(ctx, d, pol.Delay(d.Attempt, h.jitter()))
		return false
	}
	return true
}

// sendSome sends to receivers and leaves the delivery unsettled: the
// caller hands it back, and whatever did not settle here comes back with it.
func (h *Handler) sendSome(ctx context.Context, c *consumer, d *queue.Delivery, task push.Task, receivers []string) {
	sender, err := h.senders.Resolve(ctx, task)
	if err != nil {
		if !channel.IsPermanent(err) {
			return
		}
		sender = failing{err: err}
	}
	keep := context.WithoutCancel(ctx)
	for _, rcv := range receivers {
		if ctx.Err() != nil {
			return
		}
		_, _ = h.sendOne(ctx, keep, d, task, sender, rcv)
	}
}

// RetryKey counts the deliveries of a message that ended in a transient
// send failure.
func RetryKey(messageID string) string { return "push:retries:" + messageID }

// countFailure records one more failed delivery of the message and returns
// how many there were. It counts failures rather than deliveries: a task
// handed back by the rate limiter or a full pool is delivered again without
// having failed, and must not lose its retries to that. When the ledger
// store fails, the queue's delivery count stands in.
func (h *Handler) countFailure(ctx context.Context, messageID string, attempt int) int {
	n, err := h.ledger.IncrBy(context.WithoutCancel(ctx), RetryKey(messageID), 1, time.Now().Add(h.cfg.SentTTL))
	if err != nil {
		h.log.Warn("count failed deliveries; using the delivery count", "messageId", messageID, "err", err)
		return attempt
	}
	return int(n)
}

// sendCounters are the sends_total series of ch.
func (h *Handler) sendCounters(ch push.Channel) sendCounters {
	if sc, ok := h.sends[ch]; ok {
		return sc
	}
	return h.met.sendCounters(string(ch)) // a task of a channel not consumed here
}

// sendOne claims rcv in the ledger, sends, and records the result. keep is
// ctx without its cancellation, for the writes that record a send that
// happened.
func (h *Handler) sendOne(ctx, keep context.Context, d *queue.Delivery, task push.Task, sender channel.Sender, rcv string) (outcome, error) {
	key := LedgerKey(task.MessageID, rcv)
	ch := string(task.Channel)
	cnt := h.sendCounters(task.Channel)
	claimed, err := h.ledger.SetNX(ctx, key, markSending, h.cfg.SendingTTL)
	if err != nil {
		cnt.retry.Inc()
		return retry, fmt.Errorf("ledger claim %s: %w", key, err)
	}
	if !claimed {
		v, err := h.ledger.Get(ctx, key)
		switch {
		case errors.Is(err, kv.ErrNotFound):
			// The holder cleared it between our two calls: look again later.
			cnt.busy.Inc()
			return busy, nil
		case err != nil:
			cnt.retry.Inc()
			return retry, fmt.Errorf("ledger read %s: %w", key, err)
		case string(v) == string(markSending):
			cnt.busy.Inc()
			return busy, nil
		default: // sent or failed: settled by an earlier attempt
			cnt.skipped.Inc()
			return settled, nil
		}
	}
	res, err := sender.Send(ctx, channel.Message{
		MessageID: task.MessageID, BusinessID: task.BusinessID, TemplateID: task.TemplateID,
		Receiver: rcv, Subject: task.Subject, Text: task.Text, HTML: task.HTML,
	})
	switch {
	case err == nil:
		if err := h.ledger.Set(keep, key, markSent, h.cfg.SentTTL); err != nil {
			// The send happened; without the mark a redelivery after the
			// sending mark expires would send again. Log loudly; the task
			// is still acked so this attempt does not resend.
			h.log.Error("ledger mark sent", "key", key, "err", err)
		}
		cnt.sent.Inc()
		h.anchor(task, rcv, push.StateSent, d.Attempt, res.ProviderID)
		return settled, nil
	case channel.IsPermanent(err):
		h.fail(ctx, task, d.Attempt, rcv, Reason(err))
		h.log.Info("send failed permanently", "messageId", task.MessageID, "receiver", rcv, "channel", ch, "err", err)
		return settled, nil
	default:
		// Clear the claim so the retry (or another member) may send.
		if derr := h.ledger.Delete(keep, key); derr != nil {
			h.log.Warn("ledger clear after transient failure; retry waits for the sending TTL", "key", key, "err", derr)
		}
		cnt.retry.Inc()
		h.log.Warn("send failed; will retry", "messageId", task.MessageID, "receiver", rcv, "channel", ch,
			"attempt", d.Attempt, "err", err)
		return retry, err
	}
}

// giveUp settles a receiver whose retries ran out. It claims the ledger
// first, since the transient failure cleared it.
func (h *Handler) giveUp(ctx context.Context, task push.Task, attempt int, rcv string, lastErr error) {
	key := LedgerKey(task.MessageID, rcv)
	claimed, err := h.ledger.SetNX(ctx, key, markSending, h.cfg.SendingTTL)
	switch {
	case err != nil:
		// The ledger is down: only the anchor records the failure.
		h.log.Warn("ledger claim to give up", "key", key, "err", err)
	case !claimed:
		return // another attempt took the receiver over
	}
	h.log.Warn("send retries exhausted", "messageId", task.MessageID, "receiver", rcv,
		"channel", task.Channel, "attempts", attempt, "err", lastErr)
	h.fail(ctx, task, attempt, rcv, ReasonRetriesExhausted)
}

// fail marks rcv failed so no retry sends it, and emits send_failed.
func (h *Handler) fail(ctx context.Context, task push.Task, attempt int, rcv, reason string) {
	key := LedgerKey(task.MessageID, rcv)
	if err := h.ledger.Set(context.WithoutCancel(ctx), key, markFailed, h.cfg.SentTTL); err != nil {
		h.log.Error("ledger mark failed", "key", key, "err", err)
	}
	h.sendCounters(task.Channel).failed.Inc()
	h.anchor(task, rcv, push.StateSendFailed, attempt, reason)
}

// anchor emits one anchor; its eventId is stable for the attempt so a
// downstream consumer can drop duplicates.
func (h *Handler) anchor(task push.Task, rcv, state string, attempt int, detail string) {
	h.emit.emit(push.Anchor{
		EventID:    task.MessageID + ":" + rcv + ":" + state + ":" + strconv.Itoa(attempt),
		MessageID:  task.MessageID,
		BusinessID: task.BusinessID,
		Receiver:   rcv,
		State:      state,
		At:         h.now(),
		Detail:     detail,
	})
}

func (h *Handler) ack(ctx context.Context, d *queue.Delivery) {
	if err := d.Ack(context.WithoutCancel(ctx)); err != nil {
		h.log.Warn("ack task; it will be redelivered and skipped by the ledger", "topic", d.Topic, "id", d.ID, "err", err)
	}
}

func (h *Handler) nack(ctx context.Context, d *queue.Delivery, delay time.Duration) {
	if err := d.Nack(context.WithoutCancel(ctx), delay); err != nil {
		h.log.Warn("nack task; it returns after the ack timeout", "topic", d.Topic, "id", d.ID, "err", err)
	}
}

// failing stands in for the sender of a task whose sender cannot be built.
type failing struct{ err error }

func (f failing) Send(context.Context, channel.Message) (channel.Result, error) {
	return channel.Result{}, f.err
}
