package access

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/waypost/waypost/internal/platform/httpx"
	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/push"
)

// Stable error codes of the send API (see docs/push-send.md).
const (
	CodeInvalidBody           = "invalid_body"
	CodeTooManyMessages       = "too_many_messages"
	CodeEmptyReceivers        = "empty_receivers"
	CodeTooManyReceivers      = "too_many_receivers"
	CodeMissingVariable       = "missing_variable"
	CodeRenderFailed          = "render_failed"
	CodeInvalidIdempotencyKey = "invalid_idempotency_key"
	CodeUnknownTemplate       = "unknown_template"
	CodeTemplateNotApproved   = "template_not_approved"
	CodeTemplateInvalid       = "template_invalid"
	CodeIdempotencyInFlight   = "idempotency_key_in_flight"
	CodeIdempotencyReused     = "idempotency_key_reused"
	CodePayloadTooLarge       = "payload_too_large"
	CodeQueueUnavailable      = "queue_unavailable"
	CodeIdempotencyDown       = "idempotency_unavailable"
	CodeInternal              = "internal"
)

// apiError is an error already carrying its HTTP status and stable code.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func badRequest(code, msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: code, message: msg}
}

// domainCodes translates domain sentinels, once, at the edge.
var domainCodes = []struct {
	err    error
	status int
	code   string
}{
	{push.ErrUnknownTemplate, http.StatusNotFound, CodeUnknownTemplate},
	{push.ErrTemplateNotApproved, http.StatusConflict, CodeTemplateNotApproved},
	{errTemplateInvalid, http.StatusInternalServerError, CodeTemplateInvalid},
	{queue.ErrUnavailable, http.StatusServiceUnavailable, CodeQueueUnavailable},
	{queue.ErrClosed, http.StatusServiceUnavailable, CodeQueueUnavailable},
}

// toAPIError maps err to its status and code; anything unknown is internal,
// never blamed on the caller.
func toAPIError(err error) *apiError {
	if ae, ok := errors.AsType[*apiError](err); ok {
		return ae
	}
	for _, d := range domainCodes {
		if errors.Is(err, d.err) {
			return &apiError{status: d.status, code: d.code, message: err.Error()}
		}
	}
	return &apiError{status: http.StatusInternalServerError, code: CodeInternal, message: "internal error"}
}

func errorBody(e *apiError) []byte {
	b, _ := json.Marshal(map[string]httpx.Error{"error": {Code: e.code, Message: e.message}})
	return append(b, '\n')
}
