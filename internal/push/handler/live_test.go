package handler_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/kv/rediskv"
	"github.com/waypost/waypost/internal/platform/testenv"
	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/channel"
	"github.com/waypost/waypost/internal/push/handler"
	"github.com/waypost/waypost/internal/push/limit"
	"github.com/waypost/waypost/internal/push/limit/redislimit"
	"github.com/waypost/waypost/internal/push/rules"
)

// TestQuietDelayAcrossRestart delays a task to 09:00 in its template's zone,
// restarts the handler and the embedded queue during the wait, and checks
// that the task is sent once, not before 09:00 there.
//
// The queue waits in real time, so the template's zone is one whose clock
// reads 08:59:56 now (a fixed offset the test's zone loader serves), and the
// quiet window is set to end at 09:00.
func TestQuietDelayAcrossRestart(t *testing.T) {
	const zoneName = "Test/Morning"
	now := time.Now()
	sinceMidnight := now.UTC().Sub(now.UTC().Truncate(24 * time.Hour))
	offset := (9*time.Hour - 4*time.Second - sinceMidnight).Round(time.Second)
	zone := time.FixedZone(zoneName, int(offset.Seconds()))
	require.Equal(t, "08:59:5", now.In(zone).Format("15:04:05")[:7], "four seconds before 09:00 there")
	load := func(cfg *handler.Config) {
		cfg.Now = time.Now
		cfg.LoadLocation = func(name string) (*time.Location, error) {
			if name == zoneName {
				return zone, nil
			}
			return time.LoadLocation(name)
		}
	}

	dir, ledger, l := t.TempDir(), newLedger(t), newLive(t)
	l.set(t, rules.NameQuiet, `{"start":"00:00","end":"09:00","delayUntil":"09:00"}`)
	q := openQueue(t, dir)
	first := startRules(t, now, staticResolver{}, rulesOpts{q: q, ledger: ledger, live: l, cfg: load})
	tk := ruleTask("m1", now, "a")
	tk.Quiet, tk.TimeZone = push.QuietDelay, zoneName
	publish(t, q, tk)
	require.Eventually(t, func() bool { return len(first.trace.find("m1", push.StateQuietDelayed)) == 1 }, waitFor, tick)
	first.stop(t)
	require.NoError(t, q.Close(context.Background()))

	delayed := first.trace.find("m1", push.StateQuietDelayed)["a"]
	until, err := time.Parse(time.RFC3339Nano, delayed.Detail)
	require.NoError(t, err)
	require.Equal(t, "09:00:00", until.In(zone).Format("15:04:05"), "released at 09:00 in the template's zone")
	require.Less(t, time.Now(), until, "the restart must happen during the wait; the machine is too slow for this case")

	snd := &timedSender{}
	second := startRules(t, now, staticResolver{push.ChannelEmail: snd}, rulesOpts{q: openQueue(t, dir), ledger: ledger, live: l, cfg: load})
	require.Eventually(t, func() bool { return len(second.trace.find("m1", push.StateSent)) == 1 }, 2*waitFor, tick)
	second.stop(t)
	sends := snd.times()
	require.Len(t, sends, 1, "sent once, by the copy; the original was acked")
	require.False(t, sends[0].Before(until), "sent %v before 09:00", until.Sub(sends[0]))
	require.Empty(t, second.trace.find("m1", push.StateQuietDelayed), "the copy is not delayed again")
}

// timedSender records when each send happened, per instance.
type timedSender struct {
	mu sync.Mutex
	at []time.Time
}

func (s *timedSender) Send(context.Context, channel.Message) (channel.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.at = append(s.at, time.Now())
	return channel.Result{}, nil
}

func (s *timedSender) times() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.at...)
}

// TestSettingsAppliedLive changes settings through another instance's
// registry, as the settings API does, and checks the next task after a
// poll (Refresh) sees each change.
func TestSettingsAppliedLive(t *testing.T) {
	snd := newFakeSender()
	l := newLive(t)
	e := startRules(t, night, staticResolver{push.ChannelEmail: snd}, rulesOpts{live: l})
	admin := liveOn(t, l.db)

	steps := []struct {
		setting, value string
		rcv            string
		want           string
	}{
		{"", "", "a", push.StateSent},
		{rules.NameDiscard, `{"templates":[7]}`, "b", push.StateDiscarded},
		{rules.NameDiscard, `{"templates":[]}`, "c", push.StateSent},
		{rules.NameWhitelist, `{"enabled":true,"receivers":["x"]}`, "d", push.StateNotWhitelisted},
		{rules.NameWhitelist, `{"enabled":false}`, "e", push.StateSent},
		{rules.NameTTL, `{"notice":"1s"}`, "f", push.StateSendFailed},
	}
	for i, s := range steps {
		if s.setting != "" {
			admin.set(t, s.setting, s.value)
			require.NoError(t, l.reg.Refresh(context.Background()))
		}
		id := fmt.Sprintf("m%d", i)
		publish(t, e.q, ruleTask(id, night.Add(-time.Minute), s.rcv))
		require.Eventually(t, func() bool { return len(e.trace.states(id)[s.rcv]) > 0 }, waitFor, tick)
		require.Equal(t, []string{s.want}, e.trace.states(id)[s.rcv], "after %s %s", s.setting, s.value)
	}
}

// TestPoolsResizedLive grows a pool under load through push.pools.
func TestPoolsResizedLive(t *testing.T) {
	snd := newFakeSender()
	snd.block = make(chan struct{})
	l := newLive(t)
	l.set(t, rules.NamePools, `{"pools":{"email.marketing":{"workers":1,"queue":2}}}`)
	e := startRules(t, night, staticResolver{push.ChannelEmail: snd}, rulesOpts{live: l})
	const n = 30
	for i := range n {
		tk := ruleTask(fmt.Sprintf("m%d", i), night, fmt.Sprintf("r%d", i))
		tk.MsgType = push.MsgMarketing
		publish(t, e.q, tk)
	}
	require.Eventually(t, func() bool {
		busy, queued, _ := e.h.PoolStats(push.ChannelEmail, push.MsgMarketing)
		return busy == 1 && queued == 2
	}, waitFor, tick)

	admin := liveOn(t, l.db)
	admin.set(t, rules.NamePools, `{"pools":{"email.marketing":{"workers":6,"queue":4,"inFlight":8}}}`)
	require.NoError(t, l.reg.Refresh(context.Background()))
	require.Eventually(t, func() bool {
		busy, _, _ := e.h.PoolStats(push.ChannelEmail, push.MsgMarketing)
		return busy == 6
	}, waitFor, tick, "the grown pool takes more tasks at once")
	require.InDelta(t, 6, metric(t, e.prom, "waypost_push_handler_pool_workers", map[string]string{"channel": "email", "type": "marketing"}), 0)
	require.InDelta(t, 8, metric(t, e.prom, "waypost_push_handler_pool_in_flight_limit", map[string]string{"channel": "email", "type": "marketing"}), 0)
	busy, _, _ := e.h.PoolStats(push.ChannelEmail, push.MsgNotice)
	require.Zero(t, busy, "other pools keep their size")

	close(snd.block)
	require.Eventually(t, func() bool { return snd.total() == n }, waitFor, tick)
	e.stop(t)
	for i := range n {
		require.Equal(t, 1, snd.count(fmt.Sprintf("m%d", i), fmt.Sprintf("r%d", i)))
	}
}

// TestStalledChannelWithRules: with the rule stages on, a stuck email
// provider fills only the email pool; webhook tasks go through them all.
func TestStalledChannelWithRules(t *testing.T) {
	slow, fast := newFakeSender(), newFakeSender()
	slow.block = make(chan struct{})
	defer close(slow.block)
	l := newLive(t)
	l.set(t, rules.NamePools, `{"default":{"workers":4,"queue":16}}`)
	e := startRules(t, night, staticResolver{push.ChannelEmail: slow, push.ChannelWebhook: fast}, rulesOpts{live: l})
	cfg := testConfig()
	var tasks []push.Task
	for i := range 2 * (cfg.Pool.Workers + cfg.Pool.Queue) {
		tasks = append(tasks, ruleTask(fmt.Sprintf("e%d", i), night, fmt.Sprintf("r%d", i)))
	}
	publish(t, e.q, tasks...)
	require.Eventually(t, func() bool {
		busy, queued, _ := e.h.PoolStats(push.ChannelEmail, push.MsgNotice)
		return busy == cfg.Pool.Workers && queued == cfg.Pool.Queue
	}, waitFor, tick, "email pool should fill up")

	const hooks = 100
	tasks = tasks[:0]
	for i := range hooks {
		tk := ruleTask(fmt.Sprintf("w%d", i), night, fmt.Sprintf("hook%d", i))
		tk.Channel = push.ChannelWebhook
		tasks = append(tasks, tk)
	}
	publish(t, e.q, tasks...)
	require.Eventually(t, func() bool { return fast.total() == hooks }, waitFor, tick,
		"webhook tasks must complete while email is stuck")
	require.Zero(t, slow.total())
}

// TestTwoInstancesShareOneAccountLimit runs two handlers, each with its own
// Redis limiter on one key prefix, and checks that together they keep one
// account's rate.
func TestTwoInstancesShareOneAccountLimit(t *testing.T) {
	prefix := testenv.UniqueName("waypost_test_handler_limit_") + ":"
	opts := &redis.Options{Addr: testenv.RedisAddr()}
	q, ledger, l := openQueue(t, t.TempDir()), newLedger(t), newLive(t)
	const rate, tasks = 20, 40
	l.set(t, rules.NameLimits, fmt.Sprintf(`{"accounts":{"acc":{"mode":"requests","rate":%d,"per":"1s"}}}`, rate))
	// Small pools, so that the first instance to subscribe cannot hold
	// every task while it waits for the limiter.
	l.set(t, rules.NamePools, `{"default":{"workers":4,"queue":0}}`)

	var senders [2]*timedSender
	for i := range senders {
		lim, err := redislimit.Open(context.Background(), opts, redislimit.Config{Prefix: prefix}, nil, nil)
		if err != nil {
			testenv.Unavailable(t, "redis", err)
		}
		t.Cleanup(func() { _ = lim.Close() })
		senders[i] = &timedSender{}
		startRules(t, night, staticResolver{push.ChannelEmail: senders[i]},
			rulesOpts{q: q, ledger: ledger, live: l, options: []handler.Option{handler.WithLimiter(lim)}})
	}
	t.Cleanup(func() { cleanRedis(t, opts, "rate:"+prefix+"*") })
	var batch []push.Task
	for i := range tasks {
		batch = append(batch, ruleTask(fmt.Sprintf("m%d", i), night, fmt.Sprintf("r%d", i)))
	}
	publish(t, q, batch...)

	var all []time.Time
	require.Eventually(t, func() bool {
		all = append(senders[0].times(), senders[1].times()...)
		return len(all) == tasks
	}, 3*waitFor, 10*time.Millisecond)
	require.NotEmpty(t, senders[0].times(), "instance 0 sent some")
	require.NotEmpty(t, senders[1].times(), "instance 1 sent some")
	sort.Slice(all, func(i, j int) bool { return all[i].Before(all[j]) })
	// Granted evenly 50 ms apart (burst 1), so no second holds more than
	// the rate; the sender's timestamps, taken after each wait, may be late
	// by a scheduling delay on a loaded machine, which the slack of 3
	// allows. Two limiters that did not share would send 40 in a second.
	most := 0
	for i := range all {
		n := sort.Search(len(all), func(j int) bool { return !all[j].Before(all[i].Add(time.Second)) }) - i
		most = max(most, n)
	}
	t.Logf("%d sends in %v, at most %d in one second (rate %d/s)", tasks, all[len(all)-1].Sub(all[0]), most, rate)
	require.LessOrEqual(t, most, rate+3)
	require.GreaterOrEqual(t, all[len(all)-1].Sub(all[0]), time.Duration(tasks-1)*time.Second/rate-150*time.Millisecond,
		"two instances together sent no faster than one account allows")
}

func cleanRedis(t testing.TB, opts *redis.Options, pattern string) {
	rdb := redis.NewClient(opts)
	defer func() { _ = rdb.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	keys, err := rdb.Keys(ctx, pattern).Result()
	require.NoError(t, err)
	if len(keys) > 0 {
		require.NoError(t, rdb.Del(ctx, keys...).Err())
	}
}

// TestDedupFailsOpenWhenRedisGoes: with dedup on Redis and Redis gone, a
// content duplicate is sent rather than held (the seed's choice: a missed
// duplicate beats a lost verification code), and the metric says so.
func TestDedupFailsOpenWhenRedisGoes(t *testing.T) {
	p := newProxy(t, testenv.RedisAddr())
	prefix := testenv.UniqueName("waypost_test_handler_dedup_") + ":"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	store, err := rediskv.New(ctx, rediskv.Config{Addr: p.Addr(), Prefix: prefix, DialTimeout: 200 * time.Millisecond}, nil)
	if err != nil {
		testenv.Unavailable(t, "redis", err)
	}
	t.Cleanup(func() { _ = store.Close() })
	t.Cleanup(func() { cleanRedis(t, &redis.Options{Addr: testenv.RedisAddr()}, prefix+"*") })

	snd := newFakeSender()
	e := startRules(t, night, staticResolver{push.ChannelEmail: snd},
		rulesOpts{options: []handler.Option{handler.WithDedupStore(store)}})
	publish(t, e.q, ruleTask("m1", night, "a"))
	require.Eventually(t, func() bool { return len(e.trace.find("m1", push.StateSent)) == 1 }, waitFor, tick)
	publish(t, e.q, ruleTask("m2", night, "a"))
	require.Eventually(t, func() bool { return len(e.trace.states("m2")["a"]) == 1 }, waitFor, tick)
	require.Equal(t, []string{push.StateContentDeduplicated}, e.trace.states("m2")["a"], "Redis up: a duplicate")

	p.Close()
	publish(t, e.q, ruleTask("m3", night, "a"))
	require.Eventually(t, func() bool { return len(e.trace.states("m3")["a"]) == 1 }, 2*waitFor, tick)
	require.Equal(t, []string{push.StateSent}, e.trace.states("m3")["a"], "Redis down: sent unchecked")
	require.InDelta(t, 1, metric(t, e.prom, "waypost_push_dedup_fail_open_total", map[string]string{"stage": "content"}), 0)
	require.Equal(t, 1, snd.count("m3", "a"))
}

var _ limit.Limiter = (*redislimit.Limiter)(nil)
