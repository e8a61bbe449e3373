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
}

// Kafka is an external Kafka cluster.
type Kafka struct {
	Brokers           []string `yaml:"brokers"`
	TopicPrefix       string   `yaml:"topic_prefix"`
	ClientID          string   `yaml:"client_id"`
	Partitions        int      `yaml:"partitions"`
	ReplicationFactor int      `yaml:"replication_factor"`
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
	// handler role: sends at once, and tasks waiting for a worker.
	Workers int `yaml:"workers"`
	Queue   int `yaml:"queue"`
	// MaxAttempts bounds deliveries of a task whose sends fail transiently.
	MaxAttempts int `yaml:"max_attempts"`
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
		Push:    Push{Roles: []string{"api", "handler", "trace", "cron", "admin"}, MaxMessages: 500, Workers: 8, Queue: 256, MaxAttempts: 5},
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
	}
	check(slices.Contains([]string{"embedded", "nats", "kafka"}, c.Queue.Backend), "queue.backend: want embedded|nats|kafka, got %q", c.Queue.Backend)
	switch c.Queue.Backend {
	case "nats":
		check(c.Queue.NATS.URL != "", "queue.nats.url: required with queue.backend=nats")
	case "kafka":
		check(len(c.Queue.Kafka.Brokers) > 0, "queue.kafka.brokers: required with queue.backend=kafka")
	}
	if c.Tracing.Enabled {
		check(c.Tracing.Endpoint != "", "tracing.endpoint: required with tracing.enabled")
	}
	check(c.Tracing.SampleRatio >= 0 && c.Tracing.SampleRatio <= 1, "tracing.sample_ratio: want 0..1, got %v", c.Tracing.SampleRatio)
	check(c.Hub.CallTimeout > 0, "hub.call_timeout: must be positive, got %s", c.Hub.CallTimeout)
	check(c.Push.MaxMessages > 0, "push.max_messages: must be positive")
	check(c.Push.Workers > 0, "push.workers: must be positive")
	check(c.Push.Queue >= 0, "push.queue: must not be negative")
	check(c.Push.MaxAttempts > 0, "push.max_attempts: must be positive")
	for _, r := range c.Push.Roles {
		check(slices.Contains(PushRoles(), r), "push.roles: unknown role %q (want some of %v)", r, PushRoles())
	}
	return errors.Join(errs...)
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
