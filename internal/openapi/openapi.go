// Package openapi owns the OpenAPI 3 document of Waypost's HTTP contract:
// it embeds the hand-written document, serves it at GET /openapi.json and
// lists its operations so tests can compare them with the routes a server
// actually registers (see openapitest for the served-routes check).
package openapi

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

//go:embed openapi.json
var document []byte

// etag identifies this build's document so clients can revalidate cheaply.
var etag = func() string {
	sum := sha256.Sum256(document)
	return `"` + hex.EncodeToString(sum[:8]) + `"`
}()

// Document returns a copy of the embedded OpenAPI document.
func Document() []byte { return bytes.Clone(document) }

// Handler serves the document; mount it at "GET /openapi.json". Answers are
// cacheable and revalidate by ETag.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age=300")
		h.Set("ETag", etag)
		// ServeContent answers If-None-Match with 304, HEAD and ranges.
		http.ServeContent(w, r, "openapi.json", time.Time{}, bytes.NewReader(document))
	})
}

// Operation is one documented method and path, the path in the document's
// form ("/api/v1/templates/{id}").
type Operation struct {
	Method string
	Path   string
}

// Pattern is the operation in Go's ServeMux pattern form, "POST /api/v1/send".
func (o Operation) Pattern() string { return o.Method + " " + o.Path }

// methods are the OpenAPI path-item keys that name operations; the others
// (parameters, summary, servers, ...) are not operations.
var methods = map[string]string{
	"get": http.MethodGet, "put": http.MethodPut, "post": http.MethodPost,
	"delete": http.MethodDelete, "options": http.MethodOptions, "head": http.MethodHead,
	"patch": http.MethodPatch, "trace": http.MethodTrace,
}

var operations = func() []Operation {
	ops, err := parseOperations(document)
	if err != nil {
		// The document is embedded and tested; failing here means the
		// build itself is broken.
		panic(err)
	}
	return ops
}()

// Operations lists every documented operation, sorted by path then method.
func Operations() []Operation { return slices.Clone(operations) }

func parseOperations(doc []byte) ([]Operation, error) {
	var d struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("openapi: parse document: %w", err)
	}
	var ops []Operation
	for path, item := range d.Paths {
		for key := range item {
			if m, ok := methods[key]; ok {
				ops = append(ops, Operation{Method: m, Path: path})
			}
		}
	}
	slices.SortFunc(ops, func(a, b Operation) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Method, b.Method)
	})
	return ops, nil
}
