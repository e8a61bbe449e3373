package main

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/config"
	"github.com/waypost/waypost/internal/platform/kv/rediskv"
	"github.com/waypost/waypost/internal/platform/testenv"
)

func TestKafkaSecurity(t *testing.T) {
	dir := t.TempDir()
	caFile, certFile, keyFile := testenv.NewPKI(t, "kafka.internal").WriteFiles(t, dir)

	tlsCfg, mech, err := kafkaSecurity(config.Kafka{})
	require.NoError(t, err)
	require.Nil(t, tlsCfg, "TLS off by default")
	require.Nil(t, mech, "SASL off by default")

	for mechanism, name := range map[string]string{"plain": "PLAIN", "scram-sha-256": "SCRAM-SHA-256", "scram-sha-512": "SCRAM-SHA-512"} {
		_, mech, err := kafkaSecurity(config.Kafka{SASL: config.KafkaSASL{Mechanism: mechanism, Username: "u", Password: "p"}})
		require.NoError(t, err)
		require.Equal(t, name, mech.Name())
	}

	tlsCfg, _, err = kafkaSecurity(config.Kafka{TLS: config.TLS{Enabled: true, CAFile: caFile,
		CertFile: certFile, KeyFile: keyFile, ServerName: "kafka.internal"}})
	require.NoError(t, err)
	require.NotNil(t, tlsCfg.RootCAs, "the CA file is the trust store")
	require.Len(t, tlsCfg.Certificates, 1)
	require.Equal(t, "kafka.internal", tlsCfg.ServerName)
	require.False(t, tlsCfg.InsecureSkipVerify)

	_, _, err = kafkaSecurity(config.Kafka{TLS: config.TLS{Enabled: true, CAFile: filepath.Join(dir, "missing.pem")}})
	require.ErrorContains(t, err, "queue.kafka.tls.ca_file")
	_, _, err = kafkaSecurity(config.Kafka{TLS: config.TLS{Enabled: true, CAFile: keyFile}})
	require.ErrorContains(t, err, "queue.kafka.tls.ca_file: no PEM certificate")
	_, _, err = kafkaSecurity(config.Kafka{TLS: config.TLS{Enabled: true, CertFile: certFile, KeyFile: certFile}})
	require.ErrorContains(t, err, "queue.kafka.tls.cert_file/key_file")
}

// TestRedisTLS runs a Redis that takes only TLS connections and reaches it
// through kv.redis.tls: the kv store and the limiter's client (redisOptions).
func TestRedisTLS(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testenv.Unavailable(t, "redis-server binary", err)
	}
	dir := t.TempDir()
	caFile, certFile, keyFile := testenv.NewPKI(t, "kafka.internal").WriteFiles(t, dir)
	addr := startTLSRedis(t, bin, dir, caFile, certFile, keyFile)

	r := config.Redis{Addr: addr, TLS: config.TLS{Enabled: true, CAFile: caFile}}
	tlsCfg, err := tlsConfig("kv.redis.tls", r.TLS)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	store, err := rediskv.New(ctx, rediskv.Config{Addr: addr, Prefix: "tls:", TLS: tlsCfg}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	require.NoError(t, store.Set(ctx, "k", []byte("v"), time.Minute))
	got, err := store.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, "v", string(got))

	client := redis.NewClient(redisOptions(r, tlsCfg))
	t.Cleanup(func() { _ = client.Close() })
	require.NoError(t, client.Ping(ctx).Err())

	// Without TLS, or trusting another CA, the server is not reached.
	plainCtx, plainCancel := context.WithTimeout(ctx, 2*time.Second)
	defer plainCancel()
	_, err = rediskv.New(plainCtx, rediskv.Config{Addr: addr}, nil)
	require.Error(t, err)
	otherCA, _, _ := testenv.NewPKI(t).WriteFiles(t, t.TempDir())
	other, err := tlsConfig("kv.redis.tls", config.TLS{Enabled: true, CAFile: otherCA})
	require.NoError(t, err)
	_, err = rediskv.New(plainCtx, rediskv.Config{Addr: addr, TLS: other}, nil)
	require.ErrorContains(t, err, "certificate")
}

// startTLSRedis starts redis-server listening only for TLS on a free
// loopback port and returns its address.
func startTLSRedis(t *testing.T, bin, dir, caFile, certFile, keyFile string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	cmd := exec.Command(bin, "--port", "0", "--tls-port", fmt.Sprint(port), "--bind", "127.0.0.1",
		"--tls-cert-file", certFile, "--tls-key-file", keyFile, "--tls-ca-cert-file", caFile,
		"--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--dir", dir)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	}, 10*time.Second, 20*time.Millisecond, "redis-server with TLS on %s", addr)
	return addr
}
