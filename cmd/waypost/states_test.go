package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestTraceEveryState drives one `up` through every anchor state the
// handler's rules and channels produce — invalid receiver, discarded, quiet
// dropped and delayed, content deduplicated, frequency capped, not
// whitelisted, sent, send failed — and checks the exact answer of each
// trace query: by message, by receiver, and the template's counts and
// funnel. Messages are sent one after another, each waited for, because
// the platform promises no order between two sends.
func TestTraceEveryState(t *testing.T) {
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no such subscriber", http.StatusBadRequest) // permanent: send_failed
	}))
	t.Cleanup(hooks.Close)
	cmd, base, _ := startUp(t, t.TempDir(), "WAYPOST_BOOTSTRAP_API_KEY="+testKey, "WAYPOST_PUSH_EGRESS_ALLOW=127.0.0.0/8")
	defer stop(t, cmd)

	inbox := func(name, quiet string) string {
		return approvedTemplate(t, base, `{"name":"`+name+`","channel":"inbox","msgType":"notice","quiet":"`+quiet+`",
			"timezone":"UTC","content":{"text":"Hi {{.name}}, order {{.order}}"}}`)
	}
	main, discarded, dropped, delayed := inbox("main", "none"), inbox("discarded", "none"), inbox("drop", "drop"), inbox("delay", "delay")
	hookAcc := postJSON(t, base+"/api/v1/channel-accounts", `{"channel":"webhook","name":"refusing hook",
		"config":{"url":"`+hooks.URL+`/in","secret":"states-secret"}}`, http.StatusCreated, testKey)["id"].(string)
	failing := approvedTemplate(t, base, `{"name":"failing","channel":"webhook","msgType":"notice","accountId":"`+hookAcc+`",
		"content":{"text":"Parcel {{.order}}"}}`)

	// A night window around now, so the quiet templates meet it whatever
	// the hour the test runs.
	now := time.Now().UTC()
	hm := func(d time.Duration) string { return now.Add(d).Format("15:04") }
	for name, v := range map[string]string{
		"push.discard":   `{"templates":[` + discarded + `]}`,
		"push.quiet":     `{"start":"` + hm(-time.Hour) + `","end":"` + hm(2*time.Hour) + `","delayUntil":"` + hm(3*time.Hour) + `"}`,
		"push.dedup":     `{"deduplication_10":{"num":1,"time":300},"deduplication_20":{"num":2}}`,
		"push.whitelist": `{"enabled":true,"receivers":["ana","cat","dan","hook-1"]}`,
	} {
		code, body := putSetting(t, base+"/api/v1/settings/"+name, v)
		require.Equal(t, http.StatusOK, code, "%s: %s", name, body)
	}

	send := func(tmpl string, vars string, receivers ...string) string {
		t.Helper()
		rcv, err := json.Marshal(receivers)
		require.NoError(t, err)
		out := postJSON(t, base+"/api/v1/send", `{"templateId":`+tmpl+`,"messages":[{"receivers":`+string(rcv)+`,"variables":`+vars+`}]}`,
			http.StatusAccepted, testKey)
		return out["messages"].([]any)[0].(map[string]any)["messageId"].(string)
	}
	settle := func(id string, want map[string]int) {
		t.Helper()
		var got map[string]int
		require.Eventually(t, func() bool {
			got = traceStates(t, base, id)
			return fmt.Sprint(got) == fmt.Sprint(want)
		}, e2eWait, 50*time.Millisecond, "trace of %s: want %v", id, want)
	}

	first := send(main, `{"name":"Ana","order":"1"}`, "ana", " ")
	settle(first, map[string]int{"received": 1, "invalid_receiver": 1, "sent": 1})
	dup := send(main, `{"name":"Ana","order":"1"}`, "ana")
	settle(dup, map[string]int{"received": 1, "content_deduplicated": 1})
	second := send(main, `{"name":"Ana","order":"2"}`, "ana")
	settle(second, map[string]int{"received": 1, "sent": 1})
	capped := send(main, `{"name":"Ana","order":"3"}`, "ana")
	settle(capped, map[string]int{"received": 1, "frequency_capped": 1})
	stranger := send(main, `{"name":"Sam","order":"4"}`, "stranger")
	settle(stranger, map[string]int{"received": 1, "not_whitelisted": 1})
	settle(send(discarded, `{"name":"Ana","order":"5"}`, "ana"), map[string]int{"received": 1, "discarded": 1})
	settle(send(dropped, `{"name":"Cat","order":"6"}`, "cat"), map[string]int{"received": 1, "quiet_dropped": 1})
	settle(send(delayed, `{"name":"Dan","order":"7"}`, "dan"), map[string]int{"received": 1, "quiet_delayed": 1})
	settle(send(failing, `{"order":"8"}`, "hook-1"), map[string]int{"received": 1, "send_failed": 1})

	t.Run("receiver", func(t *testing.T) {
		resp := get(t, base+"/api/v1/trace/receivers/ana", testKey)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var tr struct {
			Events []struct{ MessageID, Receiver, State string }
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&tr))
		byMsg := map[string][]string{}
		for _, e := range tr.Events {
			require.Equal(t, "ana", e.Receiver)
			byMsg[e.MessageID] = append(byMsg[e.MessageID], e.State)
		}
		require.Len(t, byMsg, 5, "today's messages to ana: %v", byMsg)
		require.ElementsMatch(t, []string{"received", "sent"}, byMsg[first])
		require.ElementsMatch(t, []string{"received", "content_deduplicated"}, byMsg[dup])
		require.ElementsMatch(t, []string{"received", "frequency_capped"}, byMsg[capped])
	})

	t.Run("template", func(t *testing.T) {
		resp := get(t, base+"/api/v1/trace/templates/"+main+"?date="+now.Format("20060102"), testKey)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var tr struct {
			BusinessID string           `json:"businessId"`
			Counts     map[string]int64 `json:"counts"`
			Funnel     struct {
				Requested int64 `json:"requested"`
				Steps     []struct {
					Stage     string `json:"stage"`
					Dropped   int64  `json:"dropped"`
					Remaining int64  `json:"remaining"`
				} `json:"steps"`
				ToSend   int64 `json:"toSend"`
				Sent     int64 `json:"sent"`
				InFlight int64 `json:"inFlight"`
			} `json:"funnel"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&tr))
		id, err := strconv.Atoi(main)
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("20%06d%s", id, now.Format("20060102")), tr.BusinessID)
		want := map[string]int64{"received": 5, "invalid_receiver": 1, "sent": 2, "content_deduplicated": 1,
			"frequency_capped": 1, "not_whitelisted": 1}
		for state, n := range tr.Counts {
			require.Equal(t, want[state], n, "count of %s", state)
		}
		require.Equal(t, int64(6), tr.Funnel.Requested)
		require.Equal(t, int64(2), tr.Funnel.ToSend)
		require.Equal(t, int64(2), tr.Funnel.Sent)
		require.Zero(t, tr.Funnel.InFlight)
		remaining := map[string]int64{}
		for _, s := range tr.Funnel.Steps {
			remaining[s.Stage] = s.Remaining
		}
		require.Equal(t, map[string]int64{"invalid_receiver": 5, "discarded": 5, "quiet_dropped": 5,
			"content_deduplicated": 4, "frequency_capped": 3, "not_whitelisted": 2}, remaining)
	})
}
