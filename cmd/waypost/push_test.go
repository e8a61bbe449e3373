package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSendThroughTheCLI: a template is created, submitted and approved over
// the admin API, then `waypost send` sends with it and prints the message id;
// an unknown template prints the API's error code.
func TestSendThroughTheCLI(t *testing.T) {
	cmd, base, _ := startUp(t, t.TempDir(), "WAYPOST_BOOTSTRAP_API_KEY="+testKey)
	defer stop(t, cmd)

	tmpl := postJSON(t, base+"/api/v1/templates", `{"name":"welcome","channel":"inbox","msgType":"notice",
		"kind":"realtime","quiet":"none","timezone":"Asia/Shanghai","content":{"text":"Hello {{.name}}"}}`, http.StatusCreated, testKey)
	require.Equal(t, "draft", tmpl["status"])
	id := fmt.Sprint(tmpl["id"])
	postJSON(t, base+"/api/v1/templates/"+id+"/submit", `{}`, http.StatusOK, testKey)
	approved := postJSON(t, base+"/api/v1/templates/"+id+"/approve", `{}`, http.StatusOK, testKey)
	require.Equal(t, "approved", approved["status"])

	env := []string{"WAYPOST_SERVER=" + base, "WAYPOST_API_KEY=" + testKey}
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"send", "--template", id, "--to", "user-1,user-2", "--var", "name=Ana"}, env, &out, io.Discard))
	fields := strings.Fields(out.String())
	require.Len(t, fields, 3, out.String())
	require.Len(t, fields[0], 26, "a ULID message id")
	require.Len(t, fields[1], 16, "the seed's businessId")
	require.Equal(t, "user-1,user-2", fields[2])
	messageID := fields[0]

	// The handler delivers to the in-app inbox, and the trace shows the way.
	require.Eventually(t, func() bool {
		resp := get(t, base+"/api/v1/inbox/user-2/messages", testKey)
		defer resp.Body.Close()
		var box struct {
			Messages []struct{ MessageID, Text string }
		}
		return json.NewDecoder(resp.Body).Decode(&box) == nil && len(box.Messages) == 1 &&
			box.Messages[0].MessageID == messageID && box.Messages[0].Text == "Hello Ana"
	}, 15*time.Second, 50*time.Millisecond, "the message reaches user-2's inbox")
	require.Eventually(t, func() bool {
		resp := get(t, base+"/api/v1/trace/messages/"+messageID, testKey)
		defer resp.Body.Close()
		var tr struct {
			Events []struct{ Receiver, State string }
		}
		if json.NewDecoder(resp.Body).Decode(&tr) != nil {
			return false
		}
		states := map[string]int{}
		for _, e := range tr.Events {
			states[e.State]++
		}
		return states["received"] == 2 && states["sent"] == 2
	}, 15*time.Second, 50*time.Millisecond, "trace shows received and sent for both receivers")

	err := run(context.Background(), []string{"send", "--template", "999", "--to", "u"}, env, io.Discard, io.Discard)
	require.ErrorContains(t, err, "unknown_template")
	err = run(context.Background(), []string{"send", "--template", id, "--to", "u"}, env, io.Discard, io.Discard)
	require.ErrorContains(t, err, "missing_variable")
	err = run(context.Background(), []string{"send", "--template", id, "--to", "u", "--key", "wp_not_a_real_key_1234567890"}, []string{"WAYPOST_SERVER=" + base}, io.Discard, io.Discard)
	require.ErrorContains(t, err, "unauthorized")
	err = run(context.Background(), []string{"send", "--template", "x", "--to", "u"}, env, io.Discard, io.Discard)
	require.ErrorIs(t, err, errUsage)
}

// TestFirstMinute: a fresh up has an approved inbox template to send with.
func TestFirstMinute(t *testing.T) {
	cmd, base, out := startUp(t, t.TempDir(), "WAYPOST_BOOTSTRAP_API_KEY="+testKey)
	defer stop(t, cmd)
	var id string
	for _, l := range out {
		if f := strings.Fields(l); len(f) > 3 && f[0] == "demo" {
			id = f[3]
		}
	}
	require.NotEmpty(t, id, "banner names the demo template: %v", out)
	env := []string{"WAYPOST_SERVER=" + base, "WAYPOST_API_KEY=" + testKey}
	require.NoError(t, run(context.Background(), []string{"send", "--template", id, "--to", "alice", "--var", "name=Alice"}, env, io.Discard, io.Discard))
	require.Eventually(t, func() bool {
		resp := get(t, base+"/api/v1/inbox/alice/messages", testKey)
		defer resp.Body.Close()
		var box struct{ Messages []struct{ Text string } }
		return json.NewDecoder(resp.Body).Decode(&box) == nil && len(box.Messages) == 1 &&
			box.Messages[0].Text == "Hello Alice, welcome to Waypost."
	}, 15*time.Second, 50*time.Millisecond)
}
