package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMain lets the test binary stand in for the waypost binary: with
// WAYPOST_TEST_EXEC_MAIN=1 it runs main, so signal handling and exit codes
// are tested on a real process without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("WAYPOST_TEST_EXEC_MAIN") == "1" {
		os.Args = append([]string{"waypost"}, os.Args[1:]...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func waypostCmd(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "WAYPOST_TEST_EXEC_MAIN=1")
	return cmd
}

func TestUpServesAndStopsOnSIGTERM(t *testing.T) {
	data := t.TempDir()
	cmd := waypostCmd(t, "up", "--data", data, "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0")
	cmd.Env = append(cmd.Env, "WAYPOST_BOOTSTRAP_API_KEY="+testKey)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	base := readBaseURL(t, stdout)
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", path, body)
	}
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, resp.Header.Get("Content-Type"), "text/plain")
	for _, want := range []string{"go_goroutines", "process_resident_memory_bytes", "waypost_build_info", "waypost_http_requests_total"} {
		require.Contains(t, string(body), want)
	}

	// Every /api/v1 and /sandbox/v1 route wants a key.
	resp, err = http.Get(base + "/sandbox/v1/stations")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	postJSON(t, base+"/api/v1/hub/inbound", `{}`, http.StatusUnauthorized, "")

	// The sandbox's upstream order system answers inside up.
	resp = get(t, base+"/sandbox/v1/stations", testKey)
	var stations struct {
		Stations []struct{ Code, Kind, Market string }
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&stations))
	resp.Body.Close()
	require.GreaterOrEqual(t, len(stations.Stations), 20)

	// The wiring end to end: a waybill from the upstream order system, an
	// inbound scan at the hub, and its tracking event relayed through the
	// outbox and the queue into the sandbox order centre's track.
	waybill := postJSON(t, base+"/sandbox/v1/waybills", `{"originStation":"SGFM01","destinationStation":"SGLM01",
		"type":"standard","service":"standard","weightGrams":1200,"codAmount":0,
		"receiver":{"name":"Tan","phone":"+6591234567","address":"1 Orchard Rd"}}`, http.StatusCreated, testKey)["waybill"].(string)
	postJSON(t, base+"/api/v1/hub/inbound", `{"station":"SGFM01","waybill":"`+waybill+`","operator":"op1","device":"pda1"}`, http.StatusOK, testKey)
	require.Eventually(t, func() bool {
		resp := get(t, base+"/sandbox/v1/waybills/"+waybill, testKey)
		defer resp.Body.Close()
		var wb struct{ Track []struct{ Code string } }
		return json.NewDecoder(resp.Body).Decode(&wb) == nil && len(wb.Track) == 1 && wb.Track[0].Code == "EMB"
	}, 10*time.Second, 50*time.Millisecond, "inbound event reaches the order centre's track")

	resp = get(t, base+"/metrics", testKey)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(body), `route="POST /api/v1/hub/inbound"`, "metrics label each guarded route")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "exit status after SIGTERM; stderr:\n%s", stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("did not exit within 20s of SIGTERM; stderr:\n%s", stderr.String())
	}
	// Every actor stopped within the shared deadline: none reported running
	// out of it (a change stream held the gRPC server's graceful stop once,
	// spending the whole deadline and leaving the consumers none).
	require.NotContains(t, stderr.String(), "msg=stop ", "stderr:\n%s", stderr.String())
	// The hub's own gRPC server ending the basic data stream at shutdown is
	// not a lost stream worth a warning.
	require.NotContains(t, stderr.String(), "change stream lost", "stderr:\n%s", stderr.String())
	require.FileExists(t, filepath.Join(data, "waypost.db"))
	require.DirExists(t, filepath.Join(data, "jetstream"))
}

// testKey is the bootstrap API key the process tests start with.
const testKey = "wp_test_0123456789abcdefghijklmnop"

func get(t *testing.T, url, key string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	return resp
}

func postJSON(t *testing.T, url, body string, want int, key string) map[string]any {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	require.Equal(t, want, resp.StatusCode, "%s: %v", url, out)
	return out
}

// readBaseURL reads the ready banner and returns the HTTP base URL.
func readBaseURL(t *testing.T, r io.Reader) string {
	t.Helper()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "HTTP" {
				found <- f[1]
			}
		}
		close(found)
	}()
	select {
	case u, ok := <-found:
		require.True(t, ok, "process ended before printing its HTTP address")
		return u
	case <-time.After(30 * time.Second):
		t.Fatal("not ready within 30s")
		return ""
	}
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  []string
		code int
		want string
	}{
		{"no command", nil, nil, 2, "no command given"},
		{"unknown command", []string{"fly"}, nil, 2, `unknown command "fly"`},
		{"bad flag", []string{"up", "--nope"}, nil, 2, "flag provided but not defined: -nope"},
		{"serve missing", []string{"hub"}, nil, 2, "waypost hub serve"},
		{"invalid config", []string{"up", "--data", "x"}, []string{"WAYPOST_KV_BACKEND=etcd"}, 1, `kv.backend: want memory|redis, got "etcd"`},
		{"unknown role", []string{"push", "serve", "--roles", "api,mailer"}, nil, 1, `unknown role "mailer"`},
		{"hub without downstream", []string{"hub", "serve", "--data", "DATA", "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"}, nil, 1, "hub.downstream_addr: required"},
		{"bad sandbox latency", []string{"sandbox", "serve", "--data", "DATA", "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--sandbox-latency", "orders=5ms"}, nil, 1, `sandbox.latency: `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string(nil), tt.args...)
			for i, a := range args {
				if a == "DATA" {
					args[i] = t.TempDir()
				}
			}
			cmd := waypostCmd(t, args...)
			cmd.Env = append(cmd.Env, tt.env...)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit)
			require.Equal(t, tt.code, exit.ExitCode(), "%s", out)
			require.Contains(t, string(out), tt.want)
		})
	}
}

func TestPrintConfigMasksSecrets(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"up", "--print-config", "--http-addr", ":7000"},
		[]string{"WAYPOST_KV_REDIS_PASSWORD=hunter2", "WAYPOST_SQL_DSN=postgres://app:hunter2@db/w"}, &out, io.Discard)
	require.NoError(t, err)
	require.NotContains(t, out.String(), "hunter2")
	require.Contains(t, out.String(), `addr: :7000`)
	require.Contains(t, out.String(), "postgres://app:")
}

func TestPushRolesFlag(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"push", "serve", "--roles", "api, trace", "--print-config"}, nil, &out, io.Discard)
	require.NoError(t, err)
	require.Contains(t, out.String(), "roles:\n        - api\n        - trace\n")
}

func TestVersionAndHelp(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"version"}, nil, &out, io.Discard))
	require.True(t, strings.HasPrefix(out.String(), "waypost "))
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"help"}, nil, &out, io.Discard))
	require.Contains(t, out.String(), "waypost up [flags]")
}

func TestMigrate(t *testing.T) {
	data := t.TempDir()
	for range 2 { // the second run is a no-op
		var out bytes.Buffer
		require.NoError(t, run(context.Background(), []string{"migrate", "--data", data}, nil, &out, io.Discard))
		require.Contains(t, out.String(), "platform")
		require.NotContains(t, out.String(), "pending")
	}
}

// startUp starts `up` on data and returns its base URL and full stdout so far.
func startUp(t *testing.T, data string, env ...string) (*exec.Cmd, string, []string) {
	t.Helper()
	cmd := waypostCmd(t, "up", "--data", data, "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0")
	cmd.Env = append(cmd.Env, env...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var seen []string
	base := ""
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			require.True(t, ok, "process ended early: %v", seen)
			seen = append(seen, l)
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "HTTP" {
				base = f[1]
			}
			if strings.HasPrefix(strings.TrimSpace(l), "sandbox") {
				return cmd, base, seen
			}
		case <-timeout:
			t.Fatalf("not ready within 30s: %v", seen)
		}
	}
}

func stop(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait())
}

func TestFirstStartPrintsAKeyOnce(t *testing.T) {
	data := t.TempDir()
	cmd, base, out := startUp(t, data)
	var key string
	for _, l := range out {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == "API" && f[1] == "key" {
			key = f[2]
		}
	}
	require.True(t, strings.HasPrefix(key, "wp_"), "banner: %v", out)
	resp := get(t, base+"/api/v1/templates", key)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	stop(t, cmd)

	cmd, base, out = startUp(t, data)
	require.NotContains(t, strings.Join(out, "\n"), "API key", "the key is shown once")
	resp = get(t, base+"/api/v1/templates", key)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the key outlives the restart")
	stop(t, cmd)
}
