package openapitest_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/waypost/waypost/internal/openapi"
	"github.com/waypost/waypost/internal/openapi/openapitest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recordingTB collects failures instead of failing the test, so a test can
// assert that CheckServed reports what it should.
type recordingTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// fullMux registers every documented operation except those in skip; each
// answers a JSON 404, as a handler does for an unknown id, and the stream
// route blocks like SSE until the client goes away.
func fullMux(skip ...string) *http.ServeMux {
	mux := http.NewServeMux()
	for _, op := range openapi.Operations() {
		if strings.Contains(strings.Join(skip, "\n"), op.Pattern()) {
			continue
		}
		var h http.HandlerFunc = func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":{"code":"unknown_template","message":"no such template"}}`))
		}
		if strings.HasSuffix(op.Path, "/stream") {
			h = func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.WriteHeader(http.StatusOK)
				_ = http.NewResponseController(w).Flush()
				<-r.Context().Done()
			}
		}
		mux.Handle(op.Pattern(), h)
	}
	return mux
}

func TestCheckServed(t *testing.T) {
	tests := []struct {
		name    string
		skip    []string
		extra   func(*http.ServeMux)
		wantErr []string
	}{
		{name: "every route served"},
		{
			name:    "route missing",
			skip:    []string{"POST /api/v1/send"},
			wantErr: []string{"POST /api/v1/send: answered the router's 404"},
		},
		{
			name: "method missing",
			skip: []string{"DELETE /api/v1/keys/{id}"},
			// Another method on the path makes the mux answer 405.
			extra: func(m *http.ServeMux) {
				m.HandleFunc("GET /api/v1/keys/{id}", func(http.ResponseWriter, *http.Request) {})
			},
			wantErr: []string{"DELETE /api/v1/keys/{id}: answered 405"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux := fullMux(tt.skip...)
			if tt.extra != nil {
				tt.extra(mux)
			}
			rec := &recordingTB{TB: t}
			openapitest.CheckServed(rec, mux, "Bearer test")
			require.Len(t, rec.errs, len(tt.wantErr), "%v", rec.errs)
			for i, want := range tt.wantErr {
				require.Contains(t, rec.errs[i], want)
			}
		})
	}
}

func TestCheckServedSendsAuthAndFilledPaths(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]string{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Method+" "+r.URL.Path] = r.Header.Get("Authorization")
		mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
	})
	openapitest.CheckServed(t, h, "Bearer k")
	require.Equal(t, "Bearer k", seen["POST /api/v1/templates/1/approve"])
	require.Equal(t, "Bearer k", seen["POST /api/v1/inbox/1/messages/1/read"])
	require.Len(t, seen, len(openapi.Operations()))
}

func TestFillPath(t *testing.T) {
	tests := map[string]string{
		"/healthz":                              "/healthz",
		"/api/v1/templates/{id}/copy":           "/api/v1/templates/1/copy",
		"/api/v1/inbox/{receiver}/messages/{m}": "/api/v1/inbox/1/messages/1",
	}
	for in, want := range tests {
		t.Run(in, func(t *testing.T) {
			require.Equal(t, want, openapitest.FillPath(in))
		})
	}
}
