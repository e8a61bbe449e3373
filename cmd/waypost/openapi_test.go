package main

import (
	"net/http/httputil"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/openapi/openapitest"
)

// TestOpenAPIMatchesServedRoutes sends every documented operation to a
// running `up` and fails on any the server's router does not know.
func TestOpenAPIMatchesServedRoutes(t *testing.T) {
	cmd, base, _ := startUp(t, t.TempDir(), "WAYPOST_BOOTSTRAP_API_KEY="+testKey)
	defer stop(t, cmd)
	u, err := url.Parse(base)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.FlushInterval = -1 // pass server-sent event streams through at once
	openapitest.CheckServed(t, proxy, "Bearer "+testKey)
}
