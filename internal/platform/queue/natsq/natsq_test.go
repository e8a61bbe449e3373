package natsq_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/platform/queue/natsq"
	"github.com/waypost/waypost/internal/platform/queue/queuetest"
	"github.com/waypost/waypost/internal/platform/testenv"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// reopener remembers the config each queue was built from so the suite can
// restart it over the same storage.
type reopener struct {
	mu   sync.Mutex
	cfgs map[queue.Queue]natsq.Config
}

func (r *reopener) open(t *testing.T, cfg natsq.Config) queue.Queue {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	q, err := natsq.New(ctx, cfg, nil, nil)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = q.Close(ctx) // the suite may have closed it already
	})
	r.mu.Lock()
	r.cfgs[q] = cfg
	r.mu.Unlock()
	return q
}

func (r *reopener) reopen(t *testing.T, closed queue.Queue) queue.Queue {
	r.mu.Lock()
	cfg := r.cfgs[closed]
	r.mu.Unlock()
	return r.open(t, cfg)
}

func TestEmbeddedConformance(t *testing.T) {
	r := &reopener{cfgs: map[queue.Queue]natsq.Config{}}
	queuetest.RunWithOptions(t, func(t *testing.T) queue.Queue {
		return r.open(t, natsq.Config{Embedded: &natsq.EmbeddedConfig{StoreDir: t.TempDir()}})
	}, queuetest.Options{Reopen: r.reopen})
}

func TestExternalConformance(t *testing.T) {
	checkExternal(t)
	r := &reopener{cfgs: map[queue.Queue]natsq.Config{}}
	queuetest.RunWithOptions(t, func(t *testing.T) queue.Queue {
		prefix := externalPrefix(t)
		return r.open(t, natsq.Config{URL: testenv.NATSURL(), StreamPrefix: prefix})
	}, queuetest.Options{Reopen: r.reopen})
}

// checkExternal skips (or fails) when the external server is unreachable.
func checkExternal(t testing.TB) {
	t.Helper()
	nc, err := nats.Connect(testenv.NATSURL(), nats.Timeout(2*time.Second))
	if err != nil {
		testenv.Unavailable(t, "nats", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		testenv.Unavailable(t, "nats jetstream", err)
	}
}

// externalPrefix returns a fresh stream prefix and deletes its streams at the
// end of the test.
func externalPrefix(t testing.TB) string {
	prefix := strings.ToUpper(testenv.UniqueName("WPT")) + "_"
	t.Cleanup(func() { deleteStreams(t, prefix) })
	return prefix
}

func deleteStreams(t testing.TB, prefix string) {
	nc, err := nats.Connect(testenv.NATSURL())
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	names := js.StreamNames(ctx)
	var doomed []string
	for n := range names.Name() {
		if strings.HasPrefix(n, prefix) {
			doomed = append(doomed, n)
		}
	}
	for _, n := range doomed {
		if err := js.DeleteStream(ctx, n); err != nil {
			t.Logf("cleanup: delete stream %s: %v", n, err)
		}
	}
}
