package trace

import "github.com/waypost/waypost/internal/push"

// FunnelStep is one stage where receivers can drop out: how many it
// dropped (its state's count) and how many remain after it.
type FunnelStep struct {
	Stage     string `json:"stage"`
	Dropped   int64  `json:"dropped"`
	Remaining int64  `json:"remaining"`
}

// Funnel follows a template's receivers of one day from the request to the
// send: Requested (received + invalid_receiver), then each stage in
// pipeline order — invalid_receiver at access, then the handler's rules
// (discarded, quiet_dropped, content_deduplicated, frequency_capped,
// not_whitelisted) — leaving ToSend, which ends sent, send_failed or still
// in flight (queued, retrying, or delayed by quiet hours, which is not a
// loss). Delivered and undelivered come from receipts, after sent.
type Funnel struct {
	Requested    int64        `json:"requested"`
	Steps        []FunnelStep `json:"steps"`
	ToSend       int64        `json:"toSend"`
	Sent         int64        `json:"sent"`
	SendFailed   int64        `json:"sendFailed"`
	InFlight     int64        `json:"inFlight"`
	QuietDelayed int64        `json:"quietDelayed"`
	Delivered    int64        `json:"delivered"`
	Undelivered  int64        `json:"undelivered"`
}

// funnelStages are the states that drop a receiver, in pipeline order.
var funnelStages = []string{push.StateInvalidReceiver, push.StateDiscarded, push.StateQuietDropped,
	push.StateContentDeduplicated, push.StateFrequencyCapped, push.StateNotWhitelisted}

// NewFunnel builds the funnel of a day's counts per state. Counts that do
// not add up (a view restarted mid-day, say) never make a stage negative.
func NewFunnel(counts map[string]int64) Funnel {
	f := Funnel{
		Requested:    counts[push.StateReceived] + counts[push.StateInvalidReceiver],
		Steps:        make([]FunnelStep, 0, len(funnelStages)),
		Sent:         counts[push.StateSent],
		SendFailed:   counts[push.StateSendFailed],
		QuietDelayed: counts[push.StateQuietDelayed],
		Delivered:    counts[push.StateDelivered],
		Undelivered:  counts[push.StateUndelivered],
	}
	remaining := f.Requested
	for _, s := range funnelStages {
		remaining = max(remaining-counts[s], 0)
		f.Steps = append(f.Steps, FunnelStep{Stage: s, Dropped: counts[s], Remaining: remaining})
	}
	f.ToSend = remaining
	f.InFlight = max(remaining-f.Sent-f.SendFailed, 0)
	return f
}
