package kafkaq_test

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/platform/queue/kafkaq"
	"github.com/waypost/waypost/internal/platform/queue/queuetest"
	"github.com/waypost/waypost/internal/platform/testenv"
)

// TestTLSAndSASL runs a publish and a delivery through a cluster that takes
// only TLS and/or SASL connections, with each mechanism the config offers,
// and checks that a wrong password or a missing TLS config gets nothing in.
func TestTLSAndSASL(t *testing.T) {
	pki := testenv.NewPKI(t)
	serverTLS, clientTLS := pki.ServerTLS(), pki.ClientTLS()
	tests := []struct {
		name    string
		cluster []kfake.Opt
		tls     *tls.Config
		sasl    sasl.Mechanism
	}{
		{"plain", []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("PLAIN", "wp", "s3cret")}, nil,
			plain.Auth{User: "wp", Pass: "s3cret"}.AsMechanism()},
		{"scram-sha-256", []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "wp", "s3cret")}, nil,
			scram.Auth{User: "wp", Pass: "s3cret"}.AsSha256Mechanism()},
		{"scram-sha-512", []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "wp", "s3cret")}, nil,
			scram.Auth{User: "wp", Pass: "s3cret"}.AsSha512Mechanism()},
		{"tls", []kfake.Opt{kfake.TLS(serverTLS)}, clientTLS, nil},
		{"tls and scram", []kfake.Opt{kfake.TLS(serverTLS), kfake.EnableSASL(),
			kfake.Superuser("SCRAM-SHA-512", "wp", "s3cret")}, clientTLS,
			scram.Auth{User: "wp", Pass: "s3cret"}.AsSha512Mechanism()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := securedCluster(t, tt.cluster...)
			cfg := testConfig(c, "sec.")
			cfg.TLS, cfg.SASL = tt.tls, tt.sasl
			q := openQueue(t, cfg)
			queuetest.RoundTrip(t, q)
		})
	}

	t.Run("refused", func(t *testing.T) {
		c := securedCluster(t, kfake.TLS(serverTLS), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "wp", "s3cret"))
		for name, cfg := range map[string]kafkaq.Config{
			"wrong password": withSecurity(testConfig(c, "sec."), clientTLS, scram.Auth{User: "wp", Pass: "nope"}.AsSha256Mechanism()),
			"no tls":         withSecurity(testConfig(c, "sec."), nil, scram.Auth{User: "wp", Pass: "s3cret"}.AsSha256Mechanism()),
			"no sasl":        withSecurity(testConfig(c, "sec."), clientTLS, nil),
		} {
			t.Run(name, func(t *testing.T) {
				q := openQueue(t, cfg)
				ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
				defer cancel()
				err := q.Publish(ctx, queue.Message{Topic: "orders", Key: "k", Value: []byte("hello")})
				require.Error(t, err)
				require.ErrorIs(t, err, queue.ErrUnavailable)
			})
		}
	})
}

func withSecurity(cfg kafkaq.Config, t *tls.Config, m sasl.Mechanism) kafkaq.Config {
	cfg.TLS, cfg.SASL = t, m
	return cfg
}

func securedCluster(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1),
		kfake.GroupMinSessionTimeout(100 * time.Millisecond)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}
