package natsq_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/platform/queue/natsq"
	"github.com/waypost/waypost/internal/platform/queue/queuetest"
	"github.com/waypost/waypost/internal/platform/testenv"
)

// TestTLS runs a publish and a delivery through a JetStream server that
// takes only TLS connections, and checks that a client without TLS, or
// trusting another CA, is refused.
func TestTLS(t *testing.T) {
	pki := testenv.NewPKI(t)
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		TLSConfig: pki.ServerTLS(), TLSTimeout: 2, NoSigs: true, NoLog: true})
	require.NoError(t, err)
	srv.Start()
	require.True(t, srv.ReadyForConnections(30*time.Second))
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	url := fmt.Sprintf("nats://%s", srv.Addr())

	queuetest.RoundTrip(t, openQueue(t, natsq.Config{URL: url, TLS: pki.ClientTLS()}, nil))

	for name, cfg := range map[string]natsq.Config{
		"no tls":   {URL: url},
		"other ca": {URL: url, TLS: testenv.NewPKI(t).ClientTLS()},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := natsq.New(t.Context(), cfg, nil, nil)
			require.ErrorIs(t, err, queue.ErrUnavailable)
		})
	}
}

// openQueue opens cfg's queue, its metrics in reg (nil: none), closed when
// the test ends.
func openQueue(t *testing.T, cfg natsq.Config, reg prometheus.Registerer) *natsq.Queue {
	t.Helper()
	q, err := natsq.New(t.Context(), cfg, nil, reg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, q.Close(ctx))
	})
	return q
}
