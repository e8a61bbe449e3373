package hubapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/platform/httpx"
)

// statusOf is the HTTP status of each refusal code: 400 for a malformed
// request, 404 for something unknown, 409 for a state that forbids the
// operation, 422 for a well-formed request the network's rules refuse, and
// 503/504 for a downstream system that failed or was too slow.
var statusOf = map[string]int{
	hub.CodeInvalidBody:           http.StatusBadRequest,
	hub.CodeMalformedBarcode:      http.StatusBadRequest,
	hub.CodeUnknownWaybill:        http.StatusNotFound,
	hub.CodeUnknownStation:        http.StatusNotFound,
	hub.CodeUnknownContainer:      http.StatusNotFound,
	hub.CodeUnknownTrip:           http.StatusNotFound,
	hub.CodeContainerSealed:       http.StatusConflict,
	hub.CodeContainerClosed:       http.StatusConflict,
	hub.CodeContainerEmpty:        http.StatusConflict,
	hub.CodeNotSealed:             http.StatusConflict,
	hub.CodeNotHandedOver:         http.StatusConflict,
	hub.CodeNotReceived:           http.StatusConflict,
	hub.CodeAlreadyPacked:         http.StatusConflict,
	hub.CodeOutForDelivery:        http.StatusConflict,
	hub.CodeDelivered:             http.StatusConflict,
	hub.CodeCancelled:             http.StatusConflict,
	hub.CodeOnHold:                http.StatusConflict,
	hub.CodeWrongStation:          http.StatusUnprocessableEntity,
	hub.CodeStationInactive:       http.StatusUnprocessableEntity,
	hub.CodeMisroute:              http.StatusUnprocessableEntity,
	hub.CodeNoRule:                http.StatusUnprocessableEntity,
	hub.CodeNotSorted:             http.StatusUnprocessableEntity,
	hub.CodeBillingBlocked:        http.StatusUnprocessableEntity,
	hub.CodeCODOverLimit:          http.StatusUnprocessableEntity,
	hub.CodeDownstreamUnavailable: http.StatusServiceUnavailable,
	hub.CodeDownstreamTimeout:     http.StatusGatewayTimeout,
}

// StatusOf returns the HTTP status a refusal code answers with.
func StatusOf(code string) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return http.StatusUnprocessableEntity
}

// writeErr answers err: a refusal with its code and status, anything else
// as a logged 500 that tells the client nothing internal.
func (a *API) writeErr(w http.ResponseWriter, r *http.Request, op string, err error) {
	if ref, ok := hub.AsRefusal(err); ok {
		a.metrics.ops.WithLabelValues(op, ref.Code).Inc()
		httpx.WriteError(w, StatusOf(ref.Code), ref.Code, ref.Message)
		return
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return
	}
	a.metrics.ops.WithLabelValues(op, "internal").Inc()
	a.log.ErrorContext(r.Context(), "hub: operation failed", "op", op, "path", r.URL.Path, "err", err)
	httpx.WriteError(w, http.StatusInternalServerError, "internal", "internal error")
}

func (a *API) ok(w http.ResponseWriter, op string, status int, v any) {
	a.metrics.ops.WithLabelValues(op, hub.ResultOK).Inc()
	httpx.WriteJSON(w, status, v)
}

// decode reads a JSON body into v; an empty body leaves v as it is when
// allowEmpty is set.
func (a *API) decode(w http.ResponseWriter, r *http.Request, v any, allowEmpty bool) bool {
	r.Body = http.MaxBytesReader(w, r.Body, a.cfg.MaxBody)
	dec := json.NewDecoder(r.Body)
	err := dec.Decode(v)
	switch {
	case err == nil:
		return true
	case allowEmpty && errors.Is(err, io.EOF):
		return true
	case httpx.IsTooLarge(err):
		httpx.WriteError(w, http.StatusRequestEntityTooLarge, "payload_too_large", "request body too large")
	default:
		httpx.WriteError(w, http.StatusBadRequest, hub.CodeInvalidBody, "malformed JSON body: "+err.Error())
	}
	return false
}
