// Package openapitest checks a server's routes against the OpenAPI
// document: every documented operation must reach a handler. It is a
// non-test package so command-level tests can import it.
package openapitest

import (
	"context"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/waypost/waypost/internal/openapi"
)

// SampleValue fills every path wildcard; "1" suits integer ids and string
// ids alike, so a handler answers its own (JSON) not-found at worst.
const SampleValue = "1"

// answerTimeout bounds the wait for a handler's status line; streaming
// handlers answer their headers at once and are then cancelled.
const answerTimeout = 10 * time.Second

// CheckServed sends every documented operation to h, with path wildcards
// filled by SampleValue and an invalid JSON body, and fails t for each one
// the router did not match: the mux's own plain-text 404 or any 405. A
// handler's JSON 404 (unknown_template and the like) counts as matched. auth,
// when not empty, is sent as the Authorization header value.
func CheckServed(t testing.TB, h http.Handler, auth string) {
	t.Helper()
	for _, op := range openapi.Operations() {
		status, ctype := serve(t, h, op, auth)
		switch {
		case status == http.StatusMethodNotAllowed:
			t.Errorf("%s: answered 405 Method Not Allowed; the route is not registered for this method", op.Pattern())
		case status == http.StatusNotFound && !isJSON(ctype):
			t.Errorf("%s: answered the router's 404 (%s); the route is not registered", op.Pattern(), ctype)
		case status == 0:
			t.Errorf("%s: no answer within %s", op.Pattern(), answerTimeout)
		}
	}
}

// FillPath replaces each {wildcard} of a document path with SampleValue.
func FillPath(path string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(path, '{')
		j := strings.IndexByte(path, '}')
		if i < 0 || j < i {
			b.WriteString(path)
			return b.String()
		}
		b.WriteString(path[:i])
		b.WriteString(SampleValue)
		path = path[j+1:]
	}
}

func isJSON(ctype string) bool {
	mt, _, err := mime.ParseMediaType(ctype)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// serve runs one request and returns the status and Content-Type of the
// answer as soon as the handler commits to them, cancelling the request
// then so a stream (SSE) ends instead of blocking the check.
func serve(t testing.TB, h http.Handler, op openapi.Operation, auth string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var body *strings.Reader
	if op.Method != http.MethodGet && op.Method != http.MethodHead {
		body = strings.NewReader("{")
	} else {
		body = strings.NewReader("")
	}
	req := httptest.NewRequestWithContext(ctx, op.Method, FillPath(op.Path), body)
	if body.Len() > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := newRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(rec, req)
		rec.commit(http.StatusOK)
	}()
	timer := time.NewTimer(answerTimeout)
	defer timer.Stop()
	timedOut := false
	select {
	case <-rec.committed:
	case <-timer.C:
		timedOut = true
	}
	cancel()
	<-done
	if timedOut {
		return 0, ""
	}
	return rec.result()
}

// recorder is a ResponseWriter safe to read while the handler still runs,
// which signals when the status line is decided.
type recorder struct {
	mu        sync.Mutex
	header    http.Header
	status    int
	ctype     string
	committed chan struct{}
}

func newRecorder() *recorder {
	return &recorder{header: http.Header{}, committed: make(chan struct{})}
}

// Header is the header map; only the handler's goroutine touches it.
func (r *recorder) Header() http.Header { return r.header }

// WriteHeader records the first status.
func (r *recorder) WriteHeader(code int) { r.commit(code) }

// Write commits 200 if no status was written, like net/http.
func (r *recorder) Write(p []byte) (int, error) {
	r.commit(http.StatusOK)
	return len(p), nil
}

// Flush commits the status, as a streaming handler expects.
func (r *recorder) Flush() { r.commit(http.StatusOK) }

func (r *recorder) commit(code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status != 0 {
		return
	}
	r.status = code
	r.ctype = r.header.Get("Content-Type")
	close(r.committed)
}

func (r *recorder) result() (int, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status, r.ctype
}
