package kafkaq_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/platform/queue/kafkaq"
)

// TestTLSAndSASL runs a publish and a delivery through a cluster that takes
// only TLS and/or SASL connections, with each mechanism the config offers,
// and checks that a wrong password or a missing TLS config gets nothing in.
func TestTLSAndSASL(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
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
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			got := make(chan string, 1)
			sub, err := q.Subscribe(ctx, queue.SubscribeConfig{Topic: "orders", Group: "g"},
				func(ctx context.Context, d *queue.Delivery) {
					select {
					case got <- string(d.Value):
					default:
					}
					_ = d.Ack(ctx)
				})
			require.NoError(t, err)
			t.Cleanup(func() { _ = sub.Close(context.Background()) })
			require.NoError(t, q.Publish(ctx, queue.Message{Topic: "orders", Key: "k", Value: []byte("hello")}))
			select {
			case v := <-got:
				require.Equal(t, "hello", v)
			case <-ctx.Done():
				t.Fatal("no delivery through the secured cluster")
			}
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

// testTLS makes a CA and a certificate for 127.0.0.1 signed by it: the
// broker's TLS config, and a client's that trusts only that CA.
func testTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "waypost test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "broker"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
}
