package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/waypost/waypost/internal/platform/config"
	"github.com/waypost/waypost/internal/platform/httpx"
	"github.com/waypost/waypost/internal/platform/kv"
	"github.com/waypost/waypost/internal/platform/kv/memkv"
	"github.com/waypost/waypost/internal/platform/kv/rediskv"
	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/platform/queue/kafkaq"
	"github.com/waypost/waypost/internal/platform/queue/natsq"
	"github.com/waypost/waypost/internal/platform/sqldb"
)

// engines are the stateful dependencies every role shares.
type engines struct {
	sql   *sqldb.DB
	kv    kv.Store
	queue queue.Queue
	// redis is the kv engine's Redis connection (nil with the in-process
	// kv), for components that need Redis itself on the same server and
	// key prefix: the push handler's cluster-wide rate limiter.
	redis       *redis.Options
	redisPrefix string
}

// openEngines connects to (or, for the embedded defaults, starts) the SQL
// database, the kv store and the queue, and migrates the schema. On error
// whatever was opened is closed again.
func openEngines(ctx context.Context, cfg config.Config, logger *slog.Logger, reg prometheus.Registerer) (_ *engines, err error) {
	if err := os.MkdirAll(cfg.Data, 0o750); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	e := &engines{}
	defer func() {
		if err != nil {
			err = errors.Join(err, e.close(context.Background()))
		}
	}()

	if e.sql, err = sqldb.Open(ctx, cfg.SQLDSN(), logger); err != nil {
		return nil, err
	}
	if err = e.sql.Migrate(ctx, migrationSets()...); err != nil {
		return nil, err
	}

	switch cfg.KV.Backend {
	case "memory":
		e.kv = memkv.New()
	case "redis":
		r := cfg.KV.Redis
		tlsCfg, err := tlsConfig("kv.redis.tls", r.TLS)
		if err != nil {
			return nil, err
		}
		if e.kv, err = rediskv.New(ctx, rediskv.Config{
			Addr: r.Addr, Username: r.Username, Password: r.Password, DB: r.DB, Prefix: r.Prefix, PoolSize: r.PoolSize,
			TLS: tlsCfg,
		}, logger); err != nil {
			return nil, err
		}
		e.redis, e.redisPrefix = redisOptions(r, tlsCfg), r.Prefix
	}

	switch cfg.Queue.Backend {
	case "embedded":
		e.queue, err = natsq.New(ctx, natsq.Config{
			Embedded:     &natsq.EmbeddedConfig{StoreDir: filepath.Join(cfg.Data, "jetstream"), Listen: cfg.Queue.Embedded.Listen},
			StreamPrefix: cfg.Queue.NATS.StreamPrefix,
		}, logger, reg)
	case "nats":
		n := cfg.Queue.NATS
		tlsCfg, terr := tlsConfig("queue.nats.tls", n.TLS)
		if terr != nil {
			return nil, terr
		}
		e.queue, err = natsq.New(ctx, natsq.Config{URL: n.URL, StreamPrefix: n.StreamPrefix, Replicas: n.Replicas,
			TLS: tlsCfg, CredentialsFile: n.CredentialsFile}, logger, reg)
	case "kafka":
		k := cfg.Queue.Kafka
		tlsCfg, mech, serr := kafkaSecurity(k)
		if serr != nil {
			return nil, serr
		}
		e.queue, err = kafkaq.New(ctx, kafkaq.Config{
			Brokers: k.Brokers, TopicPrefix: k.TopicPrefix, ClientID: k.ClientID,
			Partitions: k.Partitions, ReplicationFactor: k.ReplicationFactor, TLS: tlsCfg, SASL: mech,
		}, logger, reg)
	}
	if err != nil {
		return nil, fmt.Errorf("queue %s: %w", cfg.Queue.Backend, err)
	}
	return e, nil
}

// kafkaSecurity turns queue.kafka.tls and queue.kafka.sasl into the TLS
// configuration and SASL mechanism of the Kafka clients (nil when off).
func kafkaSecurity(k config.Kafka) (*tls.Config, sasl.Mechanism, error) {
	tlsCfg, err := tlsConfig("queue.kafka.tls", k.TLS)
	if err != nil {
		return nil, nil, err
	}
	s := k.SASL
	switch s.Mechanism {
	case "":
		return tlsCfg, nil, nil
	case "plain":
		return tlsCfg, plain.Auth{User: s.Username, Pass: s.Password}.AsMechanism(), nil
	case "scram-sha-256":
		return tlsCfg, scram.Auth{User: s.Username, Pass: s.Password}.AsSha256Mechanism(), nil
	case "scram-sha-512":
		return tlsCfg, scram.Auth{User: s.Username, Pass: s.Password}.AsSha512Mechanism(), nil
	}
	return nil, nil, fmt.Errorf("queue.kafka.sasl.mechanism: unknown %q", s.Mechanism)
}

// tlsConfig is the client TLS configuration t describes, nil when t is off;
// key names the setting in errors.
func tlsConfig(key string, t config.TLS) (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	// InsecureSkipVerify is an explicit opt-in, documented as for tests.
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s.ca_file: %w", key, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s.ca_file: no PEM certificate in %s", key, t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s.cert_file/key_file: %w", key, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// redisOptions are the go-redis options of the kv engine's server, for a
// client of its own (rediskv keeps its client to itself).
func redisOptions(r config.Redis, tlsCfg *tls.Config) *redis.Options {
	return &redis.Options{Addr: r.Addr, Username: r.Username, Password: r.Password, DB: r.DB, PoolSize: r.PoolSize,
		TLSConfig: tlsCfg}
}

// checks are the readiness checks of /readyz, one per engine.
func (e *engines) checks() map[string]httpx.Check {
	return map[string]httpx.Check{
		"sql":   e.sql.PingContext,
		"kv":    e.kv.Ping,
		"queue": e.queue.Ping,
	}
}

// close releases the engines in reverse order of opening.
func (e *engines) close(ctx context.Context) error {
	var errs []error
	if e.queue != nil {
		errs = append(errs, e.queue.Close(ctx))
	}
	if e.kv != nil {
		errs = append(errs, e.kv.Close())
	}
	if e.sql != nil {
		errs = append(errs, e.sql.Close())
	}
	return errors.Join(errs...)
}
