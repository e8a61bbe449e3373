// Package testenv lets integration tests find the real servers they need and
// decide, in one place, whether a missing server skips the test or fails it.
//
// A test that cannot reach its server skips with the reason, unless the
// environment sets WAYPOST_REQUIRE_SERVICES=1 (CI does), in which case it fails.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// RequireServicesEnv names the variable that turns a skip into a failure.
const RequireServicesEnv = "WAYPOST_REQUIRE_SERVICES"

// Unavailable skips the test, or fails it when services are required, saying
// which service is missing and why.
func Unavailable(t testing.TB, service string, err error) {
	t.Helper()
	if os.Getenv(RequireServicesEnv) == "1" {
		t.Fatalf("%s unavailable (%s=1): %v", service, RequireServicesEnv, err)
	}
	t.Skipf("%s unavailable, skipping: %v (set %s=1 to fail instead)", service, err, RequireServicesEnv)
}

// Getenv returns the environment variable key, or def when it is unset or empty.
func Getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// RedisAddr is the Redis server integration tests use (WAYPOST_TEST_REDIS_ADDR).
func RedisAddr() string { return Getenv("WAYPOST_TEST_REDIS_ADDR", "127.0.0.1:6379") }

// NATSURL is the NATS JetStream server integration tests use (WAYPOST_TEST_NATS_URL).
func NATSURL() string { return Getenv("WAYPOST_TEST_NATS_URL", "nats://127.0.0.1:4222") }

// MySQLDSN is a server-level MySQL/MariaDB DSN (no database) integration tests
// use to create their own databases (WAYPOST_TEST_MYSQL_DSN).
func MySQLDSN() string {
	return Getenv("WAYPOST_TEST_MYSQL_DSN", "mysql://root@tcp(127.0.0.1:3306)/")
}

// PostgresDSN is a PostgreSQL DSN with rights to create databases that
// integration tests use to create their own (WAYPOST_TEST_POSTGRES_DSN).
func PostgresDSN() string {
	return Getenv("WAYPOST_TEST_POSTGRES_DSN", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
}

// UniqueName returns prefix followed by a random lower-case hex suffix, safe to
// use as a database, stream, topic or key prefix so reruns on a dirty server
// never collide with leftovers.
func UniqueName(prefix string) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return strings.ToLower(prefix) + hex.EncodeToString(b[:])
}
