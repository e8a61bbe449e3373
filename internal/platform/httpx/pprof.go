package httpx

import (
	"net/http"
	"net/http/pprof"
)

// Pprof is a handler serving Go's runtime profiles under /debug/pprof/
// (index, cmdline, profile, symbol, trace and the named profiles), for a
// listener of its own: it has no authentication.
func Pprof() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
