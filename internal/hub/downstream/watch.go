package downstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	basicdatav1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/basicdata/v1"
)

// errStreamEnded is why Watch resubscribes when basic data ends the change
// stream without an error: the stream is meant to last.
var errStreamEnded = errors.New("change stream ended")

// Watch follows basic data's change stream and forgets what each change
// touches, so the next lookup asks basic data again: a station update drops
// the station and every cached route through it, a published sort plan
// drops the station's plan (unless the cached one is already that version
// or newer), any other change everything about its station. It runs until
// ctx is done, then returns nil; it never returns early.
//
// Sort plans are cached only while Watch is subscribed. When the stream is
// lost (or cannot be opened) Watch clears every cache, since changes may
// have been missed, and resubscribes after a backoff between WatchRetryMin
// and WatchRetryMax, resuming after the last revision it saw; when ctx ends
// it clears them too. The first subscription replays basic data's whole
// history, which only forgets entries that are then fetched once more.
func (g *GRPC) Watch(ctx context.Context) error {
	var since int64
	failures := 0
	for {
		opened := g.cfg.Now()
		// Sort plans may be cached from the moment of subscribing: every
		// change after since reaches this stream, or its loss clears them.
		g.watching.Add(1)
		next, received, err := g.follow(ctx, since)
		since = next
		// Off first, then clear: a fetch ending in between stores nothing.
		g.watching.Add(-1)
		g.clearCaches()
		if ctx.Err() != nil {
			return nil
		}
		g.met.resubscribes.Inc()
		// A stream that carried changes, or lasted, was healthy: start the
		// backoff over rather than growing it across unrelated losses.
		if received || g.cfg.Now().Sub(opened) >= g.cfg.WatchRetryMax {
			failures = 0
		}
		wait := backoff(failures, g.cfg.WatchRetryMin, g.cfg.WatchRetryMax, rand.Float64())
		failures++
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			// A stream lost while the process stops (in up, its own gRPC
			// server ends the stream as shutdown begins, a moment before
			// ctx ends) is no news: nothing was missed that matters.
			t.Stop()
			return nil
		case <-t.C:
		}
		g.logger.WarnContext(ctx, "downstream: basic data change stream lost; caches cleared, resubscribing",
			"since_revision", since, "waited", wait, "err", err)
	}
}

// follow subscribes after revision since and applies changes until the
// stream fails; it returns the last revision seen and whether any change
// arrived.
func (g *GRPC) follow(ctx context.Context, since int64) (int64, bool, error) {
	stream, err := g.basicdata.WatchChanges(ctx, &basicdatav1.WatchChangesRequest{SinceRevision: since})
	if err != nil {
		return since, false, fmt.Errorf("basic data: watch changes: %w", err)
	}
	received := false
	for {
		ch, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errStreamEnded
			}
			return since, received, fmt.Errorf("basic data: watch changes after revision %d: %w", since, err)
		}
		received = true
		g.apply(ch)
		since = max(since, ch.GetRevision())
	}
}

// apply forgets what one change touches, then counts it (so a test that
// sees the count knows the change was applied).
func (g *GRPC) apply(ch *basicdatav1.WatchChangesResponse) {
	station := ch.GetStation()
	kind := "other"
	switch ch.GetKind() {
	case basicdatav1.ChangeKind_CHANGE_KIND_STATION_UPDATED:
		kind = "station_updated"
		g.forgetStation(station)
		// A station taken out of service may change the roads through it.
		g.forgetRoutesThrough(station)
	case basicdatav1.ChangeKind_CHANGE_KIND_SORT_PLAN_PUBLISHED:
		kind = "sort_plan_published"
		g.forgetSortPlan(station, ch.GetSortPlanVersion())
	default:
		// A kind this build does not know: whatever it changed, it is about
		// this station, or about everything when it names none.
		if station == "" {
			g.clearCaches()
		} else {
			g.ForgetStation(station)
		}
	}
	g.met.changes.WithLabelValues(kind).Inc()
}

// backoff is the wait before resubscribing after failures consecutive
// losses: lo doubled per failure, capped at hi, then jittered into its
// upper half by jitter in [0, 1) so many hubs do not resubscribe in step.
func backoff(failures int, lo, hi time.Duration, jitter float64) time.Duration {
	d := lo
	for range failures {
		if d >= hi/2 {
			d = hi
			break
		}
		d *= 2
	}
	d = min(d, hi)
	return d/2 + time.Duration(jitter*float64(d/2))
}
