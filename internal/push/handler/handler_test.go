package handler_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/channel"
	"github.com/waypost/waypost/internal/push/handler"
)

func TestHappyPathSendsEachReceiverOnce(t *testing.T) {
	snd := newFakeSender()
	e := start(t, testConfig(), staticResolver{push.ChannelEmail: snd})
	rcvs := []string{"a@example.com", "b@example.com", "c@example.com"}
	publish(t, e.q, task("m1", push.ChannelEmail, push.MsgNotice, rcvs...))

	require.Eventually(t, func() bool { return len(e.trace.find("m1", push.StateSent)) == len(rcvs) }, waitFor, tick)
	for _, r := range rcvs {
		require.Equal(t, 1, snd.count("m1", r), r)
		require.Equal(t, "sent", ledgerValue(t, e.ledger, "m1", r), r)
		a := e.trace.find("m1", push.StateSent)[r]
		require.Equal(t, "m1:"+r+":sent:1", a.EventID)
		require.Equal(t, "2000000120261129", a.BusinessID)
		require.Equal(t, "p-m1/"+r, a.Detail)
	}
	require.Empty(t, e.trace.find("m1", push.StateSendFailed))
}

func TestRedeliveryNeverResendsReceiverMarkedSent(t *testing.T) {
	// A crash after r1 was sent leaves its ledger mark; the redelivered
	// task must send only r2 and r3.
	snd := newFakeSender()
	q := openQueue(t, t.TempDir())
	ledger := newLedger(t)
	require.NoError(t, ledger.Set(context.Background(), handler.LedgerKey("m1", "r1"), []byte("sent"), time.Hour))
	require.NoError(t, ledger.Set(context.Background(), handler.LedgerKey("m1", "r2"), []byte("failed"), time.Hour))
	e := startOn(t, q, ledger, testConfig(), staticResolver{push.ChannelWebhook: snd})
	publish(t, e.q, task("m1", push.ChannelWebhook, push.MsgNotice, "r1", "r2", "r3"))

	require.Eventually(t, func() bool { return snd.count("m1", "r3") == 1 }, waitFor, tick)
	e.stop(t)
	require.Zero(t, snd.count("m1", "r1"))
	require.Zero(t, snd.count("m1", "r2"))
	require.Equal(t, "sent", ledgerValue(t, ledger, "m1", "r3"))
}

func TestFailures(t *testing.T) {
	errBounce := errors.New("mailbox does not exist")
	cases := []struct {
		name        string
		maxAttempts int
		script      func(m channel.Message, call int) error
		wantCalls   map[string]int
		wantLedger  map[string]string
		wantFailed  map[string]string // receiver → detail
	}{
		{
			name: "permanent failure is recorded and never retried",
			script: func(m channel.Message, _ int) error {
				if m.Receiver == "bad" {
					return channel.Permanent(errBounce)
				}
				return nil
			},
			wantCalls:  map[string]int{"good": 1, "bad": 1},
			wantLedger: map[string]string{"good": "sent", "bad": "failed"},
			wantFailed: map[string]string{"bad": errBounce.Error()},
		},
		{
			name: "transient failure is retried without resending the others",
			script: func(m channel.Message, call int) error {
				if m.Receiver == "flaky" && call < 3 {
					return errors.New("connection reset")
				}
				return nil
			},
			wantCalls:  map[string]int{"good": 1, "flaky": 3},
			wantLedger: map[string]string{"good": "sent", "flaky": "sent"},
		},
		{
			name:        "retries exhausted",
			maxAttempts: 3,
			script: func(m channel.Message, _ int) error {
				if m.Receiver == "down" {
					return errors.New("503 service unavailable")
				}
				return nil
			},
			wantCalls:  map[string]int{"good": 1, "down": 3},
			wantLedger: map[string]string{"good": "sent", "down": "failed"},
			wantFailed: map[string]string{"down": handler.ReasonRetriesExhausted},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			snd := newFakeSender()
			snd.script = tc.script
			cfg := testConfig()
			if tc.maxAttempts > 0 {
				cfg.ChannelMaxAttempts = map[push.Channel]int{push.ChannelEmail: tc.maxAttempts}
			}
			e := start(t, cfg, staticResolver{push.ChannelEmail: snd})
			var rcvs []string
			for r := range tc.wantCalls {
				rcvs = append(rcvs, r)
			}
			publish(t, e.q, task("m1", push.ChannelEmail, push.MsgNotice, rcvs...))

			require.Eventually(t, func() bool {
				for r, want := range tc.wantLedger {
					if ledgerValue(t, e.ledger, "m1", r) != want {
						return false
					}
				}
				return len(e.trace.find("m1", push.StateSendFailed)) == len(tc.wantFailed)
			}, waitFor, tick)
			e.stop(t) // settled: nothing more may be sent
			for r, want := range tc.wantCalls {
				require.Equal(t, want, snd.count("m1", r), r)
			}
			failed := e.trace.find("m1", push.StateSendFailed)
			for r, detail := range tc.wantFailed {
				require.Equal(t, detail, failed[r].Detail, r)
			}
		})
	}
}

func TestChannelWithoutFactoryFailsEveryReceiver(t *testing.T) {
	senders := handler.NewSenders(nil, nil)
	e := start(t, testConfig(), senders)
	publish(t, e.q, task("m1", push.ChannelSMS, push.MsgNotice, "13800000000", "13900000000"))

	require.Eventually(t, func() bool { return len(e.trace.find("m1", push.StateSendFailed)) == 2 }, waitFor, tick)
	for _, a := range e.trace.find("m1", push.StateSendFailed) {
		require.Equal(t, "channel_not_supported", a.Detail)
		require.Equal(t, "failed", ledgerValue(t, e.ledger, "m1", a.Receiver))
	}
}

func TestSlowChannelDoesNotHoldUpAnother(t *testing.T) {
	slow := newFakeSender()
	slow.block = make(chan struct{})
	fast := newFakeSender()
	cfg := testConfig()
	e := start(t, cfg, staticResolver{push.ChannelEmail: slow, push.ChannelWebhook: fast})

	var tasks []push.Task
	for i := range 3 * (cfg.Pool.Workers + cfg.Pool.Queue) {
		tasks = append(tasks, task(fmt.Sprintf("e%d", i), push.ChannelEmail, push.MsgNotice, "x@example.com"))
	}
	publish(t, e.q, tasks...)
	require.Eventually(t, func() bool {
		busy, queued, _ := e.h.PoolStats(push.ChannelEmail, push.MsgNotice)
		return busy == cfg.Pool.Workers && queued == cfg.Pool.Queue
	}, waitFor, tick, "email pool should fill up")

	const hooks = 100
	tasks = tasks[:0]
	for i := range hooks {
		tasks = append(tasks, task(fmt.Sprintf("w%d", i), push.ChannelWebhook, push.MsgNotice, "r"))
	}
	publish(t, e.q, tasks...)
	require.Eventually(t, func() bool { return fast.total() == hooks }, waitFor, tick,
		"webhook tasks must complete while email is stuck")
	require.Zero(t, slow.total(), "email is still stuck")
	busy, _, _ := e.h.PoolStats(push.ChannelEmail, push.MsgNotice)
	require.Equal(t, cfg.Pool.Workers, busy)

	close(slow.block)
	require.Eventually(t, func() bool { return slow.total() == 3*(cfg.Pool.Workers+cfg.Pool.Queue) }, waitFor, tick)
}

func TestResizeUnderLoad(t *testing.T) {
	snd := newFakeSender()
	snd.block = make(chan struct{})
	cfg := testConfig()
	cfg.Pools = map[string]handler.PoolSize{"email.marketing": {Workers: 1, Queue: 2}}
	e := start(t, cfg, staticResolver{push.ChannelEmail: snd})
	const n = 30
	var tasks []push.Task
	for i := range n {
		tasks = append(tasks, task(fmt.Sprintf("m%d", i), push.ChannelEmail, push.MsgMarketing, "x@example.com"))
	}
	publish(t, e.q, tasks...)
	require.Eventually(t, func() bool {
		busy, queued, _ := e.h.PoolStats(push.ChannelEmail, push.MsgMarketing)
		return busy == 1 && queued == 2
	}, waitFor, tick)

	require.NoError(t, e.h.Resize(context.Background(), push.ChannelEmail, push.MsgMarketing, handler.PoolSize{Workers: 6, Queue: 4}))
	require.Eventually(t, func() bool {
		busy, _, _ := e.h.PoolStats(push.ChannelEmail, push.MsgMarketing)
		return busy == 6
	}, waitFor, tick, "the grown pool takes more tasks at once")

	close(snd.block)
	require.Eventually(t, func() bool { return snd.total() == n }, waitFor, tick)
	require.NoError(t, e.h.Resize(context.Background(), push.ChannelEmail, push.MsgMarketing, handler.PoolSize{Workers: 2}))
	e.stop(t)
	for i := range n {
		require.Equal(t, 1, snd.count(fmt.Sprintf("m%d", i), "x@example.com"))
	}

	err := e.h.Resize(context.Background(), push.ChannelAppPush, push.MsgNotice, handler.PoolSize{Workers: 1, Queue: 1})
	require.ErrorIs(t, err, handler.ErrUnknownPool)
	err = e.h.Resize(context.Background(), push.ChannelEmail, push.MsgNotice, handler.PoolSize{Workers: 1, Queue: 1})
	require.ErrorIs(t, err, handler.ErrClosed)
}

func TestCloseDrainsRunningSends(t *testing.T) {
	snd := newFakeSender()
	snd.block = make(chan struct{})
	e := start(t, testConfig(), staticResolver{push.ChannelEmail: snd})
	publish(t, e.q, task("m1", push.ChannelEmail, push.MsgNotice, "r1"), task("m2", push.ChannelEmail, push.MsgNotice, "r1"))
	require.Eventually(t, func() bool {
		busy, _, _ := e.h.PoolStats(push.ChannelEmail, push.MsgNotice)
		return busy == 2
	}, waitFor, tick)

	closed := make(chan error, 1)
	go func() { closed <- e.h.Close(context.Background()) }()
	// Close must wait for the running sends rather than abandon them.
	var released atomic.Bool
	time.AfterFunc(50*time.Millisecond, func() { released.Store(true); close(snd.block) })
	require.NoError(t, <-closed)
	require.True(t, released.Load())
	require.Equal(t, 1, snd.count("m1", "r1"))
	require.Equal(t, 1, snd.count("m2", "r1"))
	require.Equal(t, "sent", ledgerValue(t, e.ledger, "m1", "r1"))
	require.Equal(t, "sent", ledgerValue(t, e.ledger, "m2", "r1"))
}

func TestCloseTimeoutLeavesUnsettledTaskForRedelivery(t *testing.T) {
	stuck := newFakeSender()
	stuck.block = make(chan struct{})
	q := openQueue(t, t.TempDir())
	ledger := newLedger(t)
	first := startOn(t, q, ledger, testConfig(), staticResolver{push.ChannelEmail: stuck})
	publish(t, q, task("m1", push.ChannelEmail, push.MsgNotice, "r1"))
	require.Eventually(t, func() bool {
		busy, _, _ := first.h.PoolStats(push.ChannelEmail, push.MsgNotice)
		return busy == 1
	}, waitFor, tick)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, first.h.Close(ctx), context.DeadlineExceeded)
	require.NoError(t, <-first.done)
	close(first.done)
	require.Zero(t, stuck.total(), "the cut-off send never completed")

	snd := newFakeSender()
	second := startOn(t, q, ledger, testConfig(), staticResolver{push.ChannelEmail: snd})
	require.Eventually(t, func() bool { return ledgerValue(t, ledger, "m1", "r1") == "sent" }, waitFor, tick)
	second.stop(t)
	require.Equal(t, 1, snd.count("m1", "r1"))
}
