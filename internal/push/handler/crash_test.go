package handler_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/kv"
	"github.com/waypost/waypost/internal/platform/kv/rediskv"
	"github.com/waypost/waypost/internal/platform/testenv"
	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/channel"
	"github.com/waypost/waypost/internal/push/handler"
)

// Environment of the crash child: set only when the test binary re-executes
// itself to play the handler process.
const (
	envCrashChild = "WAYPOST_HANDLER_CRASH_CHILD"
	envStoreDir   = "WAYPOST_HANDLER_CRASH_STORE"
	envPrefix     = "WAYPOST_HANDLER_CRASH_PREFIX"
	envOracle     = "WAYPOST_HANDLER_CRASH_ORACLE"
	envTasks      = "WAYPOST_HANDLER_CRASH_TASKS"
)

const crashReceivers = 3

func crashTasks(n int) []push.Task {
	tasks := make([]push.Task, n)
	for i := range tasks {
		rcvs := make([]string, crashReceivers)
		for r := range rcvs {
			rcvs[r] = fmt.Sprintf("r%d", r)
		}
		tasks[i] = task(fmt.Sprintf("m%04d", i), push.ChannelWebhook, push.MsgNotice, rcvs...)
	}
	return tasks
}

func crashLedger(t testing.TB, prefix string) kv.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	l, err := rediskv.New(ctx, rediskv.Config{Addr: testenv.RedisAddr(), Prefix: prefix}, nil)
	if err != nil {
		testenv.Unavailable(t, "redis", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// TestCrashKillMidRunNeverResendsSent kills a handler process with SIGKILL
// part-way through, restarts it on the same JetStream store and Redis
// ledger, and checks the oracle file the fake sender appends to: every
// receiver got its message, and none that the ledger had marked sent at the
// kill got it again.
func TestCrashKillMidRunNeverResendsSent(t *testing.T) {
	if os.Getenv(envCrashChild) != "" {
		t.Skip("running as the crash child")
	}
	prefix := testenv.UniqueName("waypost_test_handler_crash_") + ":"
	ledger := crashLedger(t, prefix)
	dir := t.TempDir()
	store := filepath.Join(dir, "js")
	oracle := filepath.Join(dir, "oracle.log")
	const n = 200

	q := openQueue(t, store)
	publish(t, q, crashTasks(n)...)
	require.NoError(t, q.Close(context.Background()))

	child := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), envCrashChild+"=1", envStoreDir+"="+store, envPrefix+"="+prefix,
			envOracle+"="+oracle, envTasks+"="+strconv.Itoa(n))
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		require.NoError(t, cmd.Start())
		return cmd
	}

	first := child()
	require.Eventually(t, func() bool { return len(readOracle(t, oracle)) >= n*crashReceivers/3 }, 30*time.Second, time.Millisecond)
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	_ = first.Wait()
	atKill := readOracle(t, oracle)
	require.Less(t, total(atKill), n*crashReceivers, "the kill must land part-way")

	ctx := context.Background()
	sentAtKill := map[string]bool{}
	for i := range n {
		for r := range crashReceivers {
			id, rcv := fmt.Sprintf("m%04d", i), fmt.Sprintf("r%d", r)
			if v, err := ledger.Get(ctx, handler.LedgerKey(id, rcv)); err == nil && string(v) == "sent" {
				sentAtKill[id+" "+rcv] = true
			}
		}
	}
	require.NotEmpty(t, sentAtKill)
	t.Cleanup(func() {
		for i := range n {
			for r := range crashReceivers {
				_ = ledger.Delete(ctx, handler.LedgerKey(fmt.Sprintf("m%04d", i), fmt.Sprintf("r%d", r)))
			}
		}
	})

	second := child()
	waitErr := make(chan error, 1)
	go func() { waitErr <- second.Wait() }()
	select {
	case err := <-waitErr:
		require.NoError(t, err, "restarted child must finish every task")
	case <-time.After(60 * time.Second):
		_ = second.Process.Kill()
		<-waitErr
		t.Fatal("restarted child did not finish")
	}

	final := readOracle(t, oracle)
	dups := 0
	for _, c := range final {
		dups += c - 1
	}
	t.Logf("at the kill: %d deliveries, %d marked sent; after restart: %d deliveries, %d repeated (sends in flight at the kill)",
		total(atKill), len(sentAtKill), total(final), dups)
	for i := range n {
		for r := range crashReceivers {
			k := fmt.Sprintf("m%04d r%d", i, r)
			require.GreaterOrEqual(t, final[k], 1, "never delivered: %s", k)
			if sentAtKill[k] {
				require.Equal(t, 1, final[k], "marked sent at the kill, then sent again: %s", k)
			}
		}
	}
}

// TestCrashChild is the handler process of the crash test.
func TestCrashChild(t *testing.T) {
	if os.Getenv(envCrashChild) == "" {
		t.Skip("only run by TestCrashKillMidRunNeverResendsSent")
	}
	n, err := strconv.Atoi(os.Getenv(envTasks))
	require.NoError(t, err)
	ledger := crashLedger(t, os.Getenv(envPrefix))
	q := openQueue(t, os.Getenv(envStoreDir))
	f, err := os.OpenFile(os.Getenv(envOracle), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	require.NoError(t, err)
	defer f.Close()

	cfg := testConfig()
	cfg.Channels = []push.Channel{push.ChannelWebhook}
	cfg.MsgTypes = []push.MsgType{push.MsgNotice}
	// A killed attempt's marks and deliveries come back within a second.
	cfg.SendingTTL = time.Second
	cfg.AckTimeout = time.Second
	h, err := handler.New(cfg, q, ledger, staticResolver{push.ChannelWebhook: &oracleSender{f: f}}, nil, nil)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- h.Run(context.Background()) }()

	ctx := context.Background()
	require.Eventually(t, func() bool {
		for i := range n {
			for r := range crashReceivers {
				v, err := ledger.Get(ctx, handler.LedgerKey(fmt.Sprintf("m%04d", i), fmt.Sprintf("r%d", r)))
				if err != nil || string(v) != "sent" {
					return false
				}
			}
		}
		return true
	}, 50*time.Second, 20*time.Millisecond)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, h.Close(cctx))
	require.NoError(t, <-done)
}

// oracleSender appends one line per delivery; a write(2) reaches the kernel
// before Send returns, so it survives SIGKILL.
type oracleSender struct {
	mu sync.Mutex
	f  *os.File
}

func (s *oracleSender) Send(_ context.Context, m channel.Message) (channel.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := fmt.Fprintf(s.f, "%s %s\n", m.MessageID, m.Receiver); err != nil {
		return channel.Result{}, err
	}
	// Slow enough that the kill lands mid-run.
	time.Sleep(time.Millisecond)
	return channel.Result{}, nil
}

func readOracle(t *testing.T, path string) map[string]int {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return map[string]int{}
	}
	require.NoError(t, err)
	defer f.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); strings.Count(line, " ") == 1 {
			out[line]++
		}
	}
	require.NoError(t, sc.Err())
	return out
}

func total(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}
