package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestPushRulesLiveInUp: a fresh `up` serves the push rules' settings
// behind the admin scope, refuses a bad value with its field, and the
// handler applies a stored value to the next task.
func TestPushRulesLiveInUp(t *testing.T) {
	cmd, base, out := startUp(t, t.TempDir(), "WAYPOST_BOOTSTRAP_API_KEY="+testKey)
	defer stop(t, cmd)
	var tmpl string
	for _, l := range out {
		if f := strings.Fields(l); len(f) > 3 && f[0] == "demo" {
			tmpl = f[3]
		}
	}
	require.NotEmpty(t, tmpl, "banner names the demo template: %v", out)

	resp := get(t, base+"/api/v1/settings/push.pools", testKey)
	var view struct {
		Value struct {
			Default struct{ Workers, Queue int }
		}
		Version int
	}
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&view))
	resp.Body.Close()
	require.Equal(t, 8, view.Value.Default.Workers, "push.workers is the default")
	require.Zero(t, view.Version)

	code, body := putSetting(t, base+"/api/v1/settings/push.pools", `{"default":{"workers":0,"queue":1}}`)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body, `"invalid_setting"`)
	require.Contains(t, body, "default.workers: 0 not in 1..4096")

	code, body = putSetting(t, base+"/api/v1/settings/push.discard", `{"templates":[`+tmpl+`]}`)
	require.Equal(t, http.StatusOK, code, body)
	env := []string{"WAYPOST_SERVER=" + base, "WAYPOST_API_KEY=" + testKey}
	var sent strings.Builder
	require.NoError(t, run(context.Background(), []string{"send", "--template", tmpl, "--to", "bob", "--var", "name=Bob"}, env, &sent, io.Discard))
	id := strings.Fields(sent.String())[0]
	require.Eventually(t, func() bool {
		return traceStates(t, base, id)["discarded"] == 1
	}, e2eWait, 50*time.Millisecond, "the handler discards the template's tasks")
	require.Zero(t, traceStates(t, base, id)["sent"])
}

func putSetting(t *testing.T, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}
