// Package httpx holds the HTTP plumbing every Waypost API shares: the server
// with sane timeouts, the JSON error shape of the external contract, health
// and readiness endpoints, and middleware for panics, body limits, logging
// and metrics.
package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Error is the body of every error response:
// {"error":{"code":"snake_case_code","message":"…"}}.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError writes the contract's error body with a stable code.
func WriteError(w http.ResponseWriter, status int, code, message string) {
	WriteJSON(w, status, map[string]Error{"error": {Code: code, Message: message}})
}

// Server is an http.Server bound to the run group's lifecycle.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// ServerConfig holds the listener settings.
type ServerConfig struct {
	Addr              string
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
}

// Listen binds the address now, so a taken port fails at start-up and
// Addr reports the real port when ":0" was asked.
func Listen(cfg ServerConfig, h http.Handler, logger *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	return &Server{
		ln: ln,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: cfg.ReadHeaderTimeout,
			IdleTimeout:       cfg.IdleTimeout,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
	}, nil
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve blocks until Shutdown; a clean shutdown returns nil.
func (s *Server) Serve() error {
	if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops accepting connections and waits for in-flight requests
// until ctx is done, then closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
		return err
	}
	return nil
}
