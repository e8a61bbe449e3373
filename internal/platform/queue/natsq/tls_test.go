package natsq_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/platform/queue/natsq"
	"github.com/waypost/waypost/internal/platform/queue/natsq/natsqtest"
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

	queuetest.RoundTrip(t, natsqtest.Open(t, natsq.Config{URL: url, TLS: pki.ClientTLS()}, nil))

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
