package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"
)

const examplePath = "../../../waypost.example.yaml"

func TestExampleFileIsTheDefaults(t *testing.T) {
	cfg, err := Load(examplePath, nil)
	require.NoError(t, err)
	require.NoError(t, cfg.Validate())
	if diff := cmp.Diff(Default(), cfg, cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("example file differs from Default() (-default +example):\n%s", diff)
	}
}

// TestExampleFileCommentsEveryKey keeps the example complete: each setting of
// Config appears in it, preceded by a comment line.
func TestExampleFileCommentsEveryKey(t *testing.T) {
	b, err := os.ReadFile(examplePath)
	require.NoError(t, err)
	lines := strings.Split(string(b), "\n")
	var c Config
	for _, f := range leaves(reflect.ValueOf(&c), nil) {
		key := f.path[len(f.path)-1] + ":"
		idx := -1
		for i, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), key) && indentOf(l) == 2*(len(f.path)-1) {
				idx = i
				break
			}
		}
		require.NotEqual(t, -1, idx, "example file lacks %s", f.name())
		require.True(t, idx > 0 && strings.HasPrefix(strings.TrimSpace(lines[idx-1]), "#"),
			"%s in the example file has no comment line above it", f.name())
	}
}

func indentOf(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
data: /from/file
http: {addr: ":1"}
grpc: {addr: ":2"}
kv: {backend: redis, redis: {addr: "file:6379"}}
`), 0o600))
	cfg, err := Load(path, []string{
		"WAYPOST_HTTP_ADDR=:3",
		"WAYPOST_KV_REDIS_PASSWORD=s3cret",
		"WAYPOST_SHUTDOWN_TIMEOUT=3s",
		"WAYPOST_QUEUE_KAFKA_BROKERS=a:9092, b:9092",
		"WAYPOST_TRACING_SAMPLE_RATIO=0.5",
		"WAYPOST_TRACING_ENABLED=true",
		"OTHER_HTTP_ADDR=:9",
	})
	require.NoError(t, err)
	require.Equal(t, "/from/file", cfg.Data, "file overrides default")
	require.Equal(t, ":3", cfg.HTTP.Addr, "env overrides file")
	require.Equal(t, ":2", cfg.GRPC.Addr)
	require.Equal(t, "file:6379", cfg.KV.Redis.Addr)
	require.Equal(t, "s3cret", cfg.KV.Redis.Password)
	require.Equal(t, 3*time.Second, cfg.ShutdownTimeout)
	require.Equal(t, []string{"a:9092", "b:9092"}, cfg.Queue.Kafka.Brokers)
	require.Equal(t, 0.5, cfg.Tracing.SampleRatio)
	require.True(t, cfg.Tracing.Enabled)
	require.Equal(t, "info", cfg.Log.Level, "untouched keys keep defaults")
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".yaml")
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	tests := []struct {
		name, file string
		env        []string
		want       string
	}{
		{"unknown key", "htp: {addr: x}", nil, "field htp not found"},
		{"bad type", "http: {max_body_bytes: lots}", nil, "line 1: cannot unmarshal"},
		{"bad env duration", "", []string{"WAYPOST_SHUTDOWN_TIMEOUT=soon"}, "WAYPOST_SHUTDOWN_TIMEOUT: want a duration"},
		{"bad env int", "", []string{"WAYPOST_KV_REDIS_DB=one"}, "WAYPOST_KV_REDIS_DB: want an integer"},
		{"bad env bool", "", []string{"WAYPOST_TRACING_ENABLED=maybe"}, "WAYPOST_TRACING_ENABLED: want true or false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.file != "" {
				path = write(tt.file)
			}
			_, err := Load(path, tt.env)
			require.ErrorContains(t, err, tt.want)
		})
	}
	_, err := Load(filepath.Join(dir, "missing.yaml"), nil)
	require.ErrorContains(t, err, "read config")
}

func TestValidate(t *testing.T) {
	cfg := Default()
	cfg.Log.Level = "loud"
	cfg.KV.Backend = "etcd"
	cfg.Queue.Backend = "kafka"
	cfg.Tracing.Enabled = true
	cfg.Push.Roles = []string{"api", "mailer"}
	err := cfg.Validate()
	for _, want := range []string{
		`log.level: want debug|info|warn|error, got "loud"`,
		`kv.backend: want memory|redis, got "etcd"`,
		"queue.kafka.brokers: required",
		"tracing.endpoint: required",
		`push.roles: unknown role "mailer"`,
	} {
		require.ErrorContains(t, err, want)
	}
	require.NoError(t, Default().Validate())

	cfg = Default()
	cfg.Queue.Backend = "kafka"
	cfg.Queue.Kafka.Brokers = []string{"k:9092"}
	cfg.Queue.Kafka.SASL.Mechanism = "gssapi"
	cfg.Queue.Kafka.TLS.CertFile = "client.pem"
	err = cfg.Validate()
	require.ErrorContains(t, err, `queue.kafka.sasl.mechanism: want plain|scram-sha-256|scram-sha-512 or empty, got "gssapi"`)
	require.ErrorContains(t, err, "queue.kafka.tls.cert_file and queue.kafka.tls.key_file: both or neither")
	cfg.Queue.Kafka.SASL.Mechanism = "scram-sha-512"
	require.ErrorContains(t, cfg.Validate(), "queue.kafka.sasl.username: required")

	cfg = Default()
	cfg.KV.Backend = "redis"
	cfg.KV.Redis.TLS.KeyFile = "client-key.pem"
	require.ErrorContains(t, cfg.Validate(), "kv.redis.tls.cert_file and kv.redis.tls.key_file: both or neither")

	cfg = Default()
	cfg.Queue.Backend = "nats"
	cfg.Queue.NATS.TLS.CertFile = "client.pem"
	require.ErrorContains(t, cfg.Validate(), "queue.nats.tls.cert_file and queue.nats.tls.key_file: both or neither")
}

func TestMasked(t *testing.T) {
	cfg := Default()
	cfg.KV.Redis.Password = "hunter2"
	cfg.SQL.DSN = "postgres://app:hunter2@db:5432/waypost?sslmode=disable"
	cfg.Queue.NATS.URL = "nats://svc:hunter2@nats:4222"
	cfg.Queue.Kafka.Brokers = []string{"k:9092"}
	cfg.Queue.Kafka.SASL.Password = "hunter3"
	out, err := cfg.YAML()
	require.NoError(t, err)
	require.NotContains(t, string(out), "hunter2")
	require.NotContains(t, string(out), "hunter3", "the Kafka SASL password is masked")
	require.Contains(t, string(out), "postgres://app:***@db:5432/waypost")
	require.Contains(t, string(out), "nats://svc:***@nats:4222")
	require.Equal(t, "hunter2", cfg.KV.Redis.Password, "masking must not touch the original")
	require.Equal(t, "k:9092", cfg.Queue.Kafka.Brokers[0])
}

func TestEnvNames(t *testing.T) {
	names := EnvNames()
	require.Contains(t, names, "WAYPOST_KV_REDIS_ADDR")
	require.Contains(t, names, "WAYPOST_HTTP_ADDR")
	require.Contains(t, names, "WAYPOST_QUEUE_EMBEDDED_LISTEN")
	require.Contains(t, names, "WAYPOST_QUEUE_KAFKA_SASL_PASSWORD")
	require.Contains(t, names, "WAYPOST_QUEUE_KAFKA_TLS_CA_FILE")
	require.Contains(t, names, "WAYPOST_KV_REDIS_TLS_ENABLED")
	require.Contains(t, names, "WAYPOST_QUEUE_NATS_CREDENTIALS_FILE")
}
