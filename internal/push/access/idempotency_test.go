package access_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/push/access"
)

func oneSMS(code string) access.SendRequest {
	return access.SendRequest{TemplateID: 1, Messages: []access.MessageRequest{
		msg(map[string]any{"code": code}, "+8613800138000")}}
}

func TestIdempotencySameBodyReplays(t *testing.T) {
	e := newEnv(t, newSource(smsTemplate(1)), nil, access.Config{})
	first := e.send(oneSMS("1"), "k1")
	require.Equal(t, http.StatusAccepted, first.status)
	require.False(t, first.replayed)
	again := e.send(oneSMS("1"), "k1")
	require.Equal(t, first.status, again.status)
	require.Equal(t, string(first.body), string(again.body))
	require.True(t, again.replayed)
	require.Len(t, e.fq.batches, 1, "a replay publishes nothing")

	other := e.send(oneSMS("1"), "k2")
	require.Equal(t, http.StatusAccepted, other.status)
	require.NotEqual(t, string(first.body), string(other.body), "another key is another send")

	e.app = "app2"
	scoped := e.send(oneSMS("1"), "k1")
	require.False(t, scoped.replayed, "keys are scoped per app")
	require.Len(t, e.fq.batches, 3)
}

func TestIdempotencyDifferentBody(t *testing.T) {
	e := newEnv(t, newSource(smsTemplate(1)), nil, access.Config{})
	require.Equal(t, http.StatusAccepted, e.send(oneSMS("1"), "k").status)
	r := e.send(oneSMS("2"), "k")
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Equal(t, access.CodeIdempotencyReused, r.code(t))
	require.Len(t, e.fq.batches, 1)
}

func TestIdempotencyInFlight(t *testing.T) {
	e := newEnv(t, newSource(smsTemplate(1)), nil, access.Config{})
	e.fq.entered = make(chan struct{})
	e.fq.release = make(chan struct{})
	done := make(chan result)
	go func() { done <- e.send(oneSMS("1"), "k") }()
	<-e.fq.entered

	r := e.send(oneSMS("1"), "k")
	require.Equal(t, http.StatusConflict, r.status)
	require.Equal(t, access.CodeIdempotencyInFlight, r.code(t))
	r = e.send(oneSMS("2"), "k")
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "another body is refused even while in flight")

	e.fq.mu.Lock()
	release := e.fq.release
	e.fq.entered, e.fq.release = nil, nil
	e.fq.mu.Unlock()
	close(release)
	first := <-done
	require.Equal(t, http.StatusAccepted, first.status)
	replay := e.send(oneSMS("1"), "k")
	require.True(t, replay.replayed)
	require.Equal(t, string(first.body), string(replay.body))
}

func TestIdempotencyErrorReleasesKey(t *testing.T) {
	e := newEnv(t, newSource(smsTemplate(1)), nil, access.Config{})
	e.fq.down = true
	require.Equal(t, http.StatusServiceUnavailable, e.send(oneSMS("1"), "k").status)
	e.fq.down = false
	r := e.send(oneSMS("1"), "k")
	require.Equal(t, http.StatusAccepted, r.status)
	require.False(t, r.replayed)
	require.Len(t, e.fq.batches, 1)
}

func TestIdempotencyConcurrentIdenticalRequests(t *testing.T) {
	e := newEnv(t, newSource(smsTemplate(1)), nil, access.Config{})
	const n = 20
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i] = e.send(oneSMS("1"), "same") })
	}
	wg.Wait()
	var fresh int
	var accepted string
	for _, r := range results {
		switch {
		case r.status == http.StatusAccepted && !r.replayed:
			fresh++
			accepted = string(r.body)
		case r.status == http.StatusAccepted:
		case r.status == http.StatusConflict:
			require.Equal(t, access.CodeIdempotencyInFlight, r.code(t))
		default:
			t.Fatalf("unexpected %d %s", r.status, r.body)
		}
	}
	require.Equal(t, 1, fresh)
	for _, r := range results {
		if r.replayed {
			require.Equal(t, accepted, string(r.body))
		}
	}
	require.Len(t, e.fq.batches, 1, "one set of tasks")
}

func TestIdempotencyInvalidKey(t *testing.T) {
	e := newEnv(t, newSource(smsTemplate(1)), nil, access.Config{})
	for _, k := range []string{strings.Repeat("k", 256), "caf\u00e9"} {
		r := e.send(oneSMS("1"), k)
		require.Equal(t, http.StatusBadRequest, r.status)
		require.Equal(t, access.CodeInvalidIdempotencyKey, r.code(t))
	}
	require.Empty(t, e.fq.batches)
}
