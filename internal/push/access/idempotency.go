package access

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/waypost/waypost/internal/platform/kv"
)

// maxIdempotencyKeyLen bounds the header; longer keys are a client bug.
const maxIdempotencyKeyLen = 255

const (
	idemInFlight = "in_flight"
	idemDone     = "done"
)

// idemRecord is what the kv store keeps under an Idempotency-Key.
type idemRecord struct {
	State  string          `json:"state"`
	Hash   string          `json:"hash"`
	Status int             `json:"status,omitempty"`
	Body   json.RawMessage `json:"body,omitempty"`
}

// idemKey scopes a client's key to its app; the app id is escaped so no
// pair of (app, key) can collide with another.
func (h *Handler) idemKey(ctx context.Context, key string) string {
	return "push:idem:" + url.PathEscape(h.appID(ctx)) + ":" + key
}

// serveIdempotent runs process at most once per (app, key) while the first
// run is in flight or its 202 is remembered. Only a 202 is remembered: an
// error response published nothing, so the key is released and a retry with
// it runs afresh.
func (h *Handler) serveIdempotent(ctx context.Context, key string, raw []byte) (int, []byte, bool) {
	if len(key) > maxIdempotencyKeyLen || !printableASCII(key) {
		status, body := h.fail(badRequest(CodeInvalidIdempotencyKey, "Idempotency-Key must be 1-255 printable ASCII characters"))
		return status, body, false
	}
	k := h.idemKey(ctx, key)
	sum := sha256.Sum256(raw)
	hash := hex.EncodeToString(sum[:])
	marker, err := json.Marshal(idemRecord{State: idemInFlight, Hash: hash})
	if err != nil {
		status, body := h.fail(fmt.Errorf("encode idempotency marker: %w", err))
		return status, body, false
	}
	claimed, rec, err := h.claim(ctx, k, marker)
	if err != nil {
		status, body := h.fail(&apiError{status: http.StatusServiceUnavailable, code: CodeIdempotencyDown, message: err.Error()})
		return status, body, false
	}
	if !claimed {
		switch {
		case rec.Hash != hash:
			status, body := h.fail(&apiError{status: http.StatusUnprocessableEntity, code: CodeIdempotencyReused,
				message: "Idempotency-Key was already used with a different body"})
			return status, body, false
		case rec.State == idemInFlight:
			status, body := h.fail(&apiError{status: http.StatusConflict, code: CodeIdempotencyInFlight,
				message: "a request with this Idempotency-Key is still being processed"})
			return status, body, false
		}
		h.metrics.requests.WithLabelValues("replayed").Inc()
		return rec.Status, append(rec.Body, '\n'), true
	}

	status, body := h.process(ctx, raw)
	// The outcome must be recorded even if the client has gone away.
	ctx = context.WithoutCancel(ctx)
	if status != http.StatusAccepted {
		if err := h.kv.Delete(ctx, k); err != nil {
			h.log.Warn("release idempotency key", "err", err)
		}
		return status, body, false
	}
	done, err := json.Marshal(idemRecord{State: idemDone, Hash: hash, Status: status, Body: bytes.TrimSpace(body)})
	if err == nil {
		var swapped bool
		swapped, err = h.kv.CompareAndSwap(ctx, k, marker, done, h.cfg.IdempotencyTTL)
		if err == nil && !swapped {
			err = errors.New("in-flight marker expired or replaced")
		}
	}
	if err != nil {
		// The tasks are published: answer 202 regardless; only a replay is lost.
		h.log.Warn("remember idempotent response", "err", err)
	}
	return status, body, false
}

// claim sets the in-flight marker, or returns the record already there.
func (h *Handler) claim(ctx context.Context, k string, marker []byte) (bool, idemRecord, error) {
	// A record can expire between SetNX and Get; a few tries settle it.
	for range 3 {
		ok, err := h.kv.SetNX(ctx, k, marker, h.cfg.InFlightTTL)
		if err != nil {
			return false, idemRecord{}, fmt.Errorf("claim idempotency key: %w", err)
		}
		if ok {
			return true, idemRecord{}, nil
		}
		raw, err := h.kv.Get(ctx, k)
		if errors.Is(err, kv.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, idemRecord{}, fmt.Errorf("read idempotency key: %w", err)
		}
		var rec idemRecord
		if err := json.Unmarshal(raw, &rec); err != nil {
			return false, idemRecord{}, fmt.Errorf("decode idempotency record: %w", err)
		}
		return false, rec, nil
	}
	return false, idemRecord{}, errors.New("claim idempotency key: record kept changing")
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
