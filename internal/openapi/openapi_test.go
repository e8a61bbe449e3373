package openapi_test

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/openapi"
)

func TestDocumentValidates(t *testing.T) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openapi.Document())
	require.NoError(t, err)
	require.NoError(t, doc.Validate(context.Background()))

	require.Contains(t, doc.Components.SecuritySchemes, "bearerAuth")
	require.Equal(t, "bearer", doc.Components.SecuritySchemes["bearerAuth"].Value.Scheme)
	require.Contains(t, doc.Components.Schemas, "Error")

	var tags []string
	for _, tg := range doc.Tags {
		tags = append(tags, tg.Name)
	}
	require.Equal(t, []string{"push", "hub", "sandbox", "settings", "ops"}, tags)
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			t.Run(name, func(t *testing.T) {
				require.Len(t, op.Tags, 1, "one tag")
				require.Contains(t, tags, op.Tags[0], "a declared tag")
				require.NotEmpty(t, op.OperationID)
				secured := strings.HasPrefix(path, "/api/v1/") || strings.HasPrefix(path, "/sandbox/v1/")
				if secured {
					require.Nil(t, op.Security, "inherits the document's bearer requirement")
					require.NotNil(t, op.Responses.Value("401"), "documents unauthorized")
					require.NotNil(t, op.Responses.Value("403"), "documents forbidden")
				} else {
					require.NotNil(t, op.Security)
					require.Empty(t, *op.Security, "ops routes are public")
				}
				for _, p := range strings.Split(path, "/") {
					if strings.HasPrefix(p, "{") {
						name := strings.Trim(p, "{}")
						require.NotNil(t, op.Parameters.GetByInAndName("path", name), "path parameter %s", name)
					}
				}
			})
		}
	}
	require.Len(t, doc.Security, 1)
	require.Contains(t, doc.Security[0], "bearerAuth")
}

func TestOperations(t *testing.T) {
	ops := openapi.Operations()
	require.Greater(t, len(ops), 40)
	require.Contains(t, ops, openapi.Operation{Method: http.MethodPost, Path: "/api/v1/send"})
	require.Contains(t, ops, openapi.Operation{Method: http.MethodGet, Path: "/api/v1/inbox/{receiver}/stream"})
	require.Contains(t, ops, openapi.Operation{Method: http.MethodGet, Path: "/healthz"})
	require.True(t, slices.IsSortedFunc(ops, func(a, b openapi.Operation) int {
		return strings.Compare(a.Path+" "+a.Method, b.Path+" "+b.Method)
	}))
	seen := map[string]bool{}
	for _, op := range ops {
		require.False(t, seen[op.Pattern()], "duplicate %s", op.Pattern())
		seen[op.Pattern()] = true
	}
	ops[0].Path = "changed"
	require.NotEqual(t, "changed", openapi.Operations()[0].Path, "Operations returns a copy")
}

func TestMissing(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		want     []string
	}{
		{"empty", nil, nil},
		{"documented", []string{"POST /api/v1/send", "GET /healthz"}, nil},
		{"wildcard names do not matter", []string{"GET /api/v1/templates/{templateId}"}, nil},
		{"host is ignored", []string{"GET example.test/api/v1/templates"}, nil},
		{"wrong method", []string{"PUT /api/v1/send"}, []string{"PUT /api/v1/send"}},
		{"unknown path", []string{"GET /api/v1/nope", "POST /api/v1/send"}, []string{"GET /api/v1/nope"}},
		{"repeats reported once", []string{"GET /x", "GET /x"}, []string{"GET /x"}},
		{"mount point covering documented paths", []string{"/api/v1/inbox/"}, nil},
		{"mount point covering nothing", []string{"/api/v2/"}, []string{"/api/v2/"}},
		{"exact path without method", []string{"/healthz"}, nil},
		{"wildcard shape matters", []string{"GET /api/v1/templates/{id}/{rest...}"}, []string{"GET /api/v1/templates/{id}/{rest...}"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, openapi.Missing(tt.patterns))
		})
	}
}

// routePattern is a ServeMux pattern with a method, as route registrations
// write them.
var routePattern = regexp.MustCompile(`^(GET|HEAD|POST|PUT|PATCH|DELETE) /`)

// TestRegisteredRoutesDocumented scans the repository's non-test Go sources
// for ServeMux patterns, so a route added without documenting it fails here
// before any server is built.
func TestRegisteredRoutesDocumented(t *testing.T) {
	root := filepath.Join("..", "..")
	var patterns []string
	for _, dir := range []string{"internal", "cmd"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			ast.Inspect(f, func(n ast.Node) bool {
				lit, ok := n.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return true
				}
				if s, err := strconv.Unquote(lit.Value); err == nil && routePattern.MatchString(s) {
					patterns = append(patterns, s)
				}
				return true
			})
			return nil
		})
		if err != nil && !strings.Contains(err.Error(), "no such file") {
			require.NoError(t, err)
		}
	}
	require.Contains(t, patterns, "POST /api/v1/send", "the scan finds registrations")
	require.Empty(t, openapi.Missing(patterns), "registered but not in openapi.json")
}

func TestHandler(t *testing.T) {
	h := openapi.Handler()

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	require.Contains(t, rec.Header().Get("Cache-Control"), "max-age=")
	require.Equal(t, openapi.Document(), rec.Body.Bytes())
	etag := rec.Header().Get("ETag")
	require.NotEmpty(t, etag)

	tests := []struct {
		name   string
		method string
		header map[string]string
		status int
	}{
		{"revalidate with etag", http.MethodGet, map[string]string{"If-None-Match": etag}, http.StatusNotModified},
		{"stale etag", http.MethodGet, map[string]string{"If-None-Match": `"other"`}, http.StatusOK},
		{"head", http.MethodHead, nil, http.StatusOK},
		{"post", http.MethodPost, nil, http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "/openapi.json", nil)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Equal(t, tt.status, rec.Code)
		})
	}
}
