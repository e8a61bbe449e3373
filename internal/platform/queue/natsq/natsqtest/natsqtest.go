// Package natsqtest opens natsq queues for tests, closed when the test ends.
package natsqtest

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/queue/natsq"
)

// Open opens cfg's queue, its metrics in reg (nil: none); when t ends it is
// closed, and the close must succeed.
func Open(t testing.TB, cfg natsq.Config, reg prometheus.Registerer) *natsq.Queue {
	t.Helper()
	q, err := natsq.New(context.Background(), cfg, nil, reg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, q.Close(ctx))
	})
	return q
}

// Embedded opens an in-process queue storing in a fresh directory of t.
func Embedded(t testing.TB) *natsq.Queue {
	t.Helper()
	return Open(t, natsq.Config{Embedded: &natsq.EmbeddedConfig{StoreDir: t.TempDir()}}, nil)
}
