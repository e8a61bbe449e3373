// Package config owns Waypost's one typed configuration: defaults, then a YAML
// file, then WAYPOST_* environment variables, then command-line flags, each
// overriding the one before. Secrets are masked whenever the config is printed
// or logged.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration of a waypost process. The yaml tag of each
// field is also the source of its environment variable: the path of tags,
// upper-cased and joined by '_', after the WAYPOST_ prefix (kv.redis.addr →
// WAYPOST_KV_REDIS_ADDR).
type Config struct {
	// Data is the directory of the embedded engines (SQLite, JetStream).
	Data string `yaml:"data"`
	// BootstrapAPIKey, when set, is ensured at start as a key with every
	// scope (WAYPOST_BOOTSTRAP_API_KEY).
	BootstrapAPIKey string        `yaml:"bootstrap_api_key" secret:"true"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	Log             Log           `yaml:"log"`
	HTTP            HTTP          `yaml:"http"`
	GRPC            GRPC          `yaml:"grpc"`
	SQL             SQL           `yaml:"sql"`
	KV              KV            `yaml:"kv"`
	Queue           Queue         `yaml:"queue"`
	Tracing         Tracing       `yaml:"tracing"`
	Push            Push          `yaml:"push"`
	Trace           Trace         `yaml:"trace"`
	Hub             Hub           `yaml:"hub"`
	Sandbox         Sandbox       `yaml:"sandbox"`
}

// Log configures the process logger.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json or text
}

// HTTP configures the HTTP listener.
type HTTP struct {
	Addr              string        `yaml:"addr"`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	MaxBodyBytes      int64         `yaml:"max_body_bytes"`
	// PprofAddr, when set, serves Go's runtime profiles (/debug/pprof/) on
	// a listener of its own, without authentication: bind it to loopback
	// or a private interface. Empty: off.
	PprofAddr string `yaml:"pprof_addr"`
}

// GRPC configures the gRPC listener.
type GRPC struct {
	Addr string `yaml:"addr"`
}

// SQL selects the relational database by DSN.
type SQL struct {
	// DSN is sqlite:PATH, mysql://… or postgres://…; empty means SQLite under Data.
	DSN          string `yaml:"dsn" secret:"dsn"`
	MaxOpenConns int    `yaml:"max_open_conns"`
}

// KV selects the key-value engine.
type KV struct {
	Backend string `yaml:"backend"` // memory or redis
	Redis   Redis  `yaml:"redis"`
}

// Redis is the Redis connection of the redis kv backend.
type Redis struct {
	Addr     string `yaml:"addr"`
	Username string `yaml:"username"`
	Password string `yaml:"password" secret:"true"`
	DB       int    `yaml:"db"`
	Prefix   string `yaml:"prefix"`
	PoolSize int    `yaml:"pool_size"`
	TLS      TLS    `yaml:"tls"`
}

// Queue selects the message queue.
type Queue struct {
	Backend  string        `yaml:"backend"` // embedded, nats or kafka
	Embedded EmbeddedQueue `yaml:"embedded"`
	NATS     NATS          `yaml:"nats"`
	Kafka    Kafka         `yaml:"kafka"`
}

// EmbeddedQueue configures the in-process JetStream server.
type EmbeddedQueue struct {
	// Listen exposes the embedded server on a TCP address; empty: in-process only.
	Listen string `yaml:"listen"`
}

// NATS is an external NATS JetStream cluster.
type NATS struct {
	URL          string `yaml:"url" secret:"dsn"`
	StreamPrefix string `yaml:"stream_prefix"`
	Replicas     int    `yaml:"replicas"`
	TLS          TLS    `yaml:"tls"`
	// CredentialsFile is a NATS credentials file (user JWT and NKey seed).
	CredentialsFile string `yaml:"credentials_file"`
}

// Kafka is an external Kafka cluster.
type Kafka struct {
	Brokers           []string  `yaml:"brokers"`
	TopicPrefix       string    `yaml:"topic_prefix"`
	ClientID          string    `yaml:"client_id"`
	Partitions        int       `yaml:"partitions"`
	ReplicationFactor int       `yaml:"replication_factor"`
	TLS               TLS       `yaml:"tls"`
	SASL              KafkaSASL `yaml:"sasl"`
}

// TLS is a client's TLS to a server (Kafka brokers, Redis).
type TLS struct {
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM bundle of the CAs to trust; empty: the system's.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// servers that authenticate clients by certificate; both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked in the server's certificate.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any broker certificate: tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// KafkaSASL authenticates every connection to the brokers.
type KafkaSASL struct {
	// Mechanism is empty (no SASL), plain, scram-sha-256 or scram-sha-512.
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	Password  string `yaml:"password" secret:"true"`
}

// Tracing configures OpenTelemetry tracing (off by default).
type Tracing struct {
	Enabled     bool    `yaml:"enabled"`
	Endpoint    string  `yaml:"endpoint"` // OTLP/gRPC collector host:port
	Insecure    bool    `yaml:"insecure"`
	SampleRatio float64 `yaml:"sample_ratio"`
	ServiceName string  `yaml:"service_name"`
}

// Push configures the message platform.
type Push struct {
	// Roles run by `waypost push serve`: api, handler, trace, cron, admin.
	Roles []string `yaml:"roles"`
	// MasterKey is the passphrase channel-account secrets are encrypted
	// under; empty means a random one kept in <data>/master.key.
	MasterKey string `yaml:"master_key" secret:"true"`
	// EgressAllow lists CIDRs outbound sends may reach despite the
	// private-address guard.
	EgressAllow []string `yaml:"egress_allow"`
	// MaxMessages bounds the messages of one send request.
	MaxMessages int `yaml:"max_messages"`
	// Workers and Queue size each channel × message-type worker pool of the
	// handler role: sends at once, and tasks waiting for a worker. They are
	// the default of the live setting push.pools.
	Workers int `yaml:"workers"`
	Queue   int `yaml:"queue"`
	// MaxAttempts bounds the deliveries of a task that may end in a
	// transient send failure; RetryBackoff is the first retry's delay,
	// doubling up to MaxRetryBackoff. The default of the live setting
	// push.retry.
	MaxAttempts     int           `yaml:"max_attempts"`
	RetryBackoff    time.Duration `yaml:"retry_backoff"`
	MaxRetryBackoff time.Duration `yaml:"max_retry_backoff"`
}

// Trace configures push's full-link tracing (the trace role and its queries).
type Trace struct {
	// TimeZone is the IANA zone of a receiver's day (the realtime list of
	// the day and the ?date= of queries) and of "today".
	TimeZone string `yaml:"timezone"`
	// MessageTTL is how long a message's realtime event list lives after
	// its last event.
	MessageTTL time.Duration `yaml:"message_ttl"`
	// MessageMaxEvents and ReceiverMaxEvents cap the realtime lists; a
	// fuller one is answered from the detail store.
	MessageMaxEvents  int `yaml:"message_max_events"`
	ReceiverMaxEvents int `yaml:"receiver_max_events"`
	// CountsTTL is how long a template day's counts per state live after
	// its last event.
	CountsTTL time.Duration `yaml:"counts_ttl"`
	// EventIDTTL is how long an event id is remembered, so a redelivered
	// anchor is not counted twice.
	EventIDTTL time.Duration `yaml:"event_id_ttl"`
	// Retention is how long the detail store keeps events; PruneInterval
	// how often it deletes older ones.
	Retention     time.Duration `yaml:"retention"`
	PruneInterval time.Duration `yaml:"prune_interval"`
	// BatchSize and FlushInterval shape the consumers' writes: at most
	// BatchSize anchors per write, an anchor waiting at most FlushInterval.
	BatchSize     int           `yaml:"batch_size"`
	FlushInterval time.Duration `yaml:"flush_interval"`
	// QueryLimit bounds the events one query answers (the latest ones).
	QueryLimit int `yaml:"query_limit"`
}

// Hub configures the station operations system.
type Hub struct {
	// DownstreamAddr is the gRPC address of the downstream services (order
	// centre, basic data, billing, delivery, linehaul). Empty means this
	// process's own gRPC address, where `up` serves the sandbox.
	DownstreamAddr string `yaml:"downstream_addr"`
	// CallTimeout bounds each downstream call (the caller's deadline, when
	// earlier, wins).
	CallTimeout time.Duration `yaml:"call_timeout"`
}

// Sandbox configures the simulated downstream services.
type Sandbox struct {
	// Latency is the injection spec: none, seed (80–120 ms per call) or
	// rules such as "order=80ms±20ms,*=1ms;errors=billing:0.01".
	Latency string `yaml:"latency"`
}

// Default returns the configuration `waypost up` runs with when nothing is set.
func Default() Config {
	return Config{
		Data:            "./data",
		ShutdownTimeout: 15 * time.Second,
		Log:             Log{Level: "info", Format: "text"},
		HTTP: HTTP{
			Addr:              ":8080",
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxBodyBytes:      4 << 20,
		},
		GRPC:  GRPC{Addr: ":9090"},
		SQL:   SQL{MaxOpenConns: 16},
		KV:    KV{Backend: "memory", Redis: Redis{Addr: "127.0.0.1:6379", Prefix: "waypost:", PoolSize: 64}},
		Queue: Queue{Backend: "embedded", NATS: NATS{URL: "nats://127.0.0.1:4222", StreamPrefix: "WAYPOST_", Replicas: 1}, Kafka: Kafka{TopicPrefix: "waypost.", ClientID: "waypost", Partitions: 12, ReplicationFactor: 1}},
		Tracing: Tracing{
			SampleRatio: 1,
			ServiceName: "waypost",
		},
		Push: Push{Roles: []string{"api", "handler", "trace", "cron", "admin"}, MaxMessages: 500, Workers: 8, Queue: 256, MaxAttempts: 5,
			RetryBackoff: time.Second, MaxRetryBackoff: time.Minute},
		Trace: Trace{
			TimeZone: "UTC", MessageTTL: 72 * time.Hour, MessageMaxEvents: 2000, ReceiverMaxEvents: 2000,
			CountsTTL: 30 * 24 * time.Hour, EventIDTTL: 72 * time.Hour, Retention: 30 * 24 * time.Hour,
			PruneInterval: time.Hour, BatchSize: 1000, FlushInterval: 100 * time.Millisecond, QueryLimit: 1000,
		},
		Hub:     Hub{CallTimeout: 300 * time.Millisecond},
		Sandbox: Sandbox{Latency: "none"},
	}
}

// Load builds the configuration from defaults, the YAML file at path (skipped
// when path is empty) and the environment (a list of KEY=VALUE as from
// os.Environ). Flags are applied by the caller afterwards, then Validate.
func Load(path string, environ []string) (Config, error) {
	cfg := Default()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("read config: %w", err)
		}
		if err := decodeYAML(b, &cfg); err != nil {
			return Config{}, fmt.Errorf("config %s: %w", filepath.Base(path), err)
		}
	}
	if err := applyEnv(&cfg, environ); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// decodeYAML decodes b over cfg, refusing keys Config does not have so a typo
// is an error rather than a silently ignored setting.
func decodeYAML(b []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// Validate reports every invalid setting at once.
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.Data != "", "data: must not be empty")
	check(c.ShutdownTimeout > 0, "shutdown_timeout: must be positive, got %s", c.ShutdownTimeout)
	check(slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level), "log.level: want debug|info|warn|error, got %q", c.Log.Level)
	check(slices.Contains([]string{"json", "text"}, c.Log.Format), "log.format: want json|text, got %q", c.Log.Format)
	check(c.HTTP.Addr != "", "http.addr: must not be empty")
	check(c.HTTP.MaxBodyBytes > 0, "http.max_body_bytes: must be positive")
	check(c.GRPC.Addr != "", "grpc.addr: must not be empty")
	check(c.SQL.MaxOpenConns > 0, "sql.max_open_conns: must be positive")
	check(slices.Contains([]string{"memory", "redis"}, c.KV.Backend), "kv.backend: want memory|redis, got %q", c.KV.Backend)
	if c.KV.Backend == "redis" {
		check(c.KV.Redis.Addr != "", "kv.redis.addr: required with kv.backend=redis")
		check((c.KV.Redis.TLS.CertFile == "") == (c.KV.Redis.TLS.KeyFile == ""),
			"kv.redis.tls.cert_file and kv.redis.tls.key_file: both or neither")
	}
	check(slices.Contains([]string{"embedded", "nats", "kafka"}, c.Queue.Backend), "queue.backend: want embedded|nats|kafka, got %q", c.Queue.Backend)
	switch c.Queue.Backend {
	case "nats":
		check(c.Queue.NATS.URL != "", "queue.nats.url: required with queue.backend=nats")
		check((c.Queue.NATS.TLS.CertFile == "") == (c.Queue.NATS.TLS.KeyFile == ""),
			"queue.nats.tls.cert_file and queue.nats.tls.key_file: both or neither")
	case "kafka":
		k := c.Queue.Kafka
		check(len(k.Brokers) > 0, "queue.kafka.brokers: required with queue.backend=kafka")
		check(slices.Contains([]string{"", "plain", "scram-sha-256", "scram-sha-512"}, k.SASL.Mechanism),
			"queue.kafka.sasl.mechanism: want plain|scram-sha-256|scram-sha-512 or empty, got %q", k.SASL.Mechanism)
		if k.SASL.Mechanism != "" {
			check(k.SASL.Username != "", "queue.kafka.sasl.username: required with queue.kafka.sasl.mechanism")
		}
		check((k.TLS.CertFile == "") == (k.TLS.KeyFile == ""),
			"queue.kafka.tls.cert_file and queue.kafka.tls.key_file: both or neither")
	}
	if c.Tracing.Enabled {
		check(c.Tracing.Endpoint != "", "tracing.endpoint: required with tracing.enabled")
	}
	check(c.Tracing.SampleRatio >= 0 && c.Tracing.SampleRatio <= 1, "tracing.sample_ratio: want 0..1, got %v", c.Tracing.SampleRatio)
	check(c.Hub.CallTimeout > 0, "hub.call_timeout: must be positive, got %s", c.Hub.CallTimeout)
	check(c.Push.MaxMessages > 0, "push.max_messages: must be positive")
	check(c.Push.Workers > 0, "push.workers: must be positive")
	check(c.Push.Queue >= 0, "push.queue: must not be negative")
	check(c.Push.MaxAttempts > 0 && c.Push.MaxAttempts <= 100, "push.max_attempts: want 1..100, got %d", c.Push.MaxAttempts)
	check(c.Push.RetryBackoff > 0 && c.Push.RetryBackoff <= time.Hour, "push.retry_backoff: want (0, 1h], got %v", c.Push.RetryBackoff)
	check(c.Push.MaxRetryBackoff >= c.Push.RetryBackoff && c.Push.MaxRetryBackoff <= 24*time.Hour,
		"push.max_retry_backoff: want retry_backoff..24h, got %v", c.Push.MaxRetryBackoff)
	for _, r := range c.Push.Roles {
		check(slices.Contains(PushRoles(), r), "push.roles: unknown role %q (want some of %v)", r, PushRoles())
	}
	errs = append(errs, c.Trace.validate()...)
	return errors.Join(errs...)
}

func (t Trace) validate() []error {
	var errs []error
	if _, err := time.LoadLocation(t.TimeZone); err != nil || t.TimeZone == "" {
		errs = append(errs, fmt.Errorf("trace.timezone: want an IANA zone such as UTC or Asia/Shanghai, got %q", t.TimeZone))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"message_ttl", t.MessageTTL}, {"counts_ttl", t.CountsTTL}, {"event_id_ttl", t.EventIDTTL},
		{"retention", t.Retention}, {"prune_interval", t.PruneInterval}, {"flush_interval", t.FlushInterval}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("trace.%s: must be positive, got %s", d.name, d.v))
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"message_max_events", t.MessageMaxEvents}, {"receiver_max_events", t.ReceiverMaxEvents},
		{"batch_size", t.BatchSize}, {"query_limit", t.QueryLimit}} {
		if n.v <= 0 {
			errs = append(errs, fmt.Errorf("trace.%s: must be positive, got %d", n.name, n.v))
		}
	}
	if t.QueryLimit > 0 && t.QueryLimit >= min(t.MessageMaxEvents, t.ReceiverMaxEvents) {
		errs = append(errs, fmt.Errorf("trace.query_limit: %d must be below message_max_events and receiver_max_events, or full lists would answer every query from the detail store", t.QueryLimit))
	}
	return errs
}

// PushRoles lists the roles `waypost push serve` can run.
func PushRoles() []string { return []string{"api", "handler", "trace", "cron", "admin"} }

// SQLDSN is the DSN to open: the configured one, or SQLite under Data.
func (c Config) SQLDSN() string {
	if c.SQL.DSN != "" {
		return c.SQL.DSN
	}
	return "sqlite:" + filepath.Join(c.Data, "waypost.db")
}
