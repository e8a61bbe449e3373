package bench

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"text/tabwriter"
	"time"
)

// recorder is one worker's tally; workers never share one, so recording
// takes no lock.
type recorder struct {
	latencies []time.Duration
	errors    map[string]int
	messages  int
	receivers int
	invalid   int
}

func newRecorder() *recorder { return &recorder{errors: map[string]int{}} }

func (r *recorder) ok(d time.Duration) { r.latencies = append(r.latencies, d) }

func (r *recorder) fail(code string) { r.errors[code]++ }

// Result is what a run measured.
type Result struct {
	Start time.Time
	// Elapsed runs from the first request to the last answer, and rates are
	// computed over it: an open loop that fell behind its schedule keeps
	// sending past the duration, and its rate must not be overstated.
	Elapsed time.Duration
	// Accepted counts 2xx answers; Errors counts the others by "status code"
	// or as "transport"/"timeout".
	Accepted int
	Errors   map[string]int
	// Messages and ReceiverMessages count what the accepted answers carry;
	// Invalid counts receivers the server refused inside accepted requests.
	Messages, ReceiverMessages, Invalid int
	// Latency holds every accepted request's latency, sorted. Every sample
	// is kept (8 bytes each, under a megabyte for 100k requests) so the
	// percentiles are exact, not a bucket's bound.
	Latency []time.Duration
}

func merge(recs []*recorder) *Result {
	res := &Result{Errors: map[string]int{}}
	for _, r := range recs {
		res.Latency = append(res.Latency, r.latencies...)
		for k, v := range r.errors {
			res.Errors[k] += v
		}
		res.Messages += r.messages
		res.ReceiverMessages += r.receivers
		res.Invalid += r.invalid
	}
	slices.Sort(res.Latency)
	res.Accepted = len(res.Latency)
	return res
}

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted samples, or 0 when there are none.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// perSecond is n over d, 0 for an empty window.
func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// AcceptedPerSecond is accepted requests per second of the sending window.
func (r *Result) AcceptedPerSecond() float64 { return perSecond(r.Accepted, r.Elapsed) }

// ReceiverMessagesPerSecond is accepted receiver-messages per second.
func (r *Result) ReceiverMessagesPerSecond() float64 {
	return perSecond(r.ReceiverMessages, r.Elapsed)
}

// Print writes r, and d and cpu when not nil, as a readable table.
func Print(w io.Writer, r *Result, d *Delivery, cpu *CPU) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, a...)...) }
	row("elapsed", "%s", r.Elapsed.Round(time.Millisecond))
	row("requests accepted", "%d", r.Accepted)
	row("accepted/s", "%.1f", r.AcceptedPerSecond())
	row("messages accepted", "%d", r.Messages)
	row("receiver-messages/s", "%.1f", r.ReceiverMessagesPerSecond())
	if r.Invalid > 0 {
		row("invalid receivers", "%d", r.Invalid)
	}
	row("latency p50", "%s", round(Percentile(r.Latency, 50)))
	row("latency p90", "%s", round(Percentile(r.Latency, 90)))
	row("latency p99", "%s", round(Percentile(r.Latency, 99)))
	row("latency max", "%s", round(Percentile(r.Latency, 100)))
	errs := 0
	for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
		row("errors "+k, "%d", r.Errors[k])
		errs += r.Errors[k]
	}
	if errs == 0 {
		row("errors", "0")
	}
	if d != nil {
		row("delivered", "%d of %d", d.Delivered, d.Expected)
		row("delivered/s", "%.1f", d.PerSecond())
		if d.BadSignature > 0 {
			row("bad signatures", "%d", d.BadSignature)
		}
		if d.Duplicates > 0 {
			row("redeliveries", "%d", d.Duplicates)
		}
		if len(d.EndToEnd) > 0 {
			row("end-to-end p50", "%s", round(Percentile(d.EndToEnd, 50)))
			row("end-to-end p99", "%s", round(Percentile(d.EndToEnd, 99)))
		}
	}
	if cpu != nil {
		n, unit := r.ReceiverMessages, "receiver-message"
		if d != nil && d.Delivered > 0 {
			n, unit = d.Delivered, "delivery"
		}
		perUnit := func(t time.Duration) string {
			if n == 0 {
				return t.Round(time.Millisecond).String()
			}
			return fmt.Sprintf("%s (%s per %s)", t.Round(time.Millisecond), round(t/time.Duration(n)), unit)
		}
		if cpu.ServerErr != nil {
			row("server CPU", "unknown: %v", cpu.ServerErr)
		} else {
			row("server CPU", "%s", perUnit(cpu.Server))
		}
		if cpu.Generator > 0 {
			row("generator CPU", "%s", perUnit(cpu.Generator))
		}
	}
	return tw.Flush()
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}
