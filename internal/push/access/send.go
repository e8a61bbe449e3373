package access

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/waypost/waypost/internal/platform/httpx"
	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/push"
)

// SendRequest is the body of POST /api/v1/send.
type SendRequest struct {
	TemplateID int64            `json:"templateId"`
	Messages   []MessageRequest `json:"messages"`
}

// MessageRequest is one message: its receivers, the template's variables and
// the caller's own reference.
type MessageRequest struct {
	Receivers []string       `json:"receivers"`
	Variables map[string]any `json:"variables,omitempty"`
	BizID     string         `json:"bizId,omitempty"`
}

// SendResponse is the 202 body.
type SendResponse struct {
	Messages []MessageResult `json:"messages"`
}

// MessageResult is one accepted message: the receivers it goes to and those
// refused with why.
type MessageResult struct {
	MessageID  string            `json:"messageId"`
	BusinessID string            `json:"businessId"`
	Receivers  []string          `json:"receivers"`
	Invalid    []InvalidReceiver `json:"invalid,omitempty"`
}

// InvalidReceiver is a receiver dropped from its message, with the reason
// also carried by its invalid_receiver anchor.
type InvalidReceiver struct {
	Receiver string `json:"receiver"`
	Reason   string `json:"reason"`
}

// IdempotencyKeyHeader names the optional request header.
const IdempotencyKeyHeader = "Idempotency-Key"

// ReplayedHeader is set to "true" on a response replayed for an Idempotency-Key.
const ReplayedHeader = "Idempotency-Replayed"

// ServeHTTP handles POST /api/v1/send.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	status, body, replayed := h.serve(r)
	if replayed {
		w.Header().Set(ReplayedHeader, "true")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (h *Handler) serve(r *http.Request) (status int, body []byte, replayed bool) {
	ctx := r.Context()
	raw, err := h.readBody(r)
	if err == nil {
		if key := r.Header.Get(IdempotencyKeyHeader); key != "" {
			return h.serveIdempotent(ctx, key, raw)
		}
		status, body = h.process(ctx, raw)
		return status, body, false
	}
	status, body = h.fail(err)
	return status, body, false
}

func (h *Handler) readBody(r *http.Request) ([]byte, error) {
	tooLarge := &apiError{status: http.StatusRequestEntityTooLarge, code: CodePayloadTooLarge,
		message: "request body is larger than " + strconv.FormatInt(h.cfg.MaxBodyBytes, 10) + " bytes"}
	if r.ContentLength > h.cfg.MaxBodyBytes {
		return nil, tooLarge
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, h.cfg.MaxBodyBytes+1))
	if err != nil {
		if httpx.IsTooLarge(err) {
			return nil, tooLarge
		}
		return nil, badRequest(CodeInvalidBody, "read body: "+err.Error())
	}
	if int64(len(raw)) > h.cfg.MaxBodyBytes {
		return nil, tooLarge
	}
	return raw, nil
}

// fail renders err as the contract's error body and counts it.
func (h *Handler) fail(err error) (int, []byte) {
	ae := toAPIError(err)
	if ae.status >= http.StatusInternalServerError {
		h.log.Error("send failed", "code", ae.code, "err", err)
	}
	h.metrics.requests.WithLabelValues(ae.code).Inc()
	return ae.status, errorBody(ae)
}

// process runs the access chain on one body: validate, load, render, check
// receivers, publish. Nothing is published unless every message is valid.
func (h *Handler) process(ctx context.Context, raw []byte) (int, []byte) {
	req, err := h.decode(raw)
	if err != nil {
		return h.fail(err)
	}
	comp, err := h.cache.Get(ctx, req.TemplateID)
	if err != nil {
		return h.fail(err)
	}
	tpl := comp.Template
	if tpl.Status != push.StatusApproved {
		return h.fail(fmt.Errorf("template %d is %s: %w", tpl.ID, tpl.Status, push.ErrTemplateNotApproved))
	}
	rendered := make([]Rendered, len(req.Messages))
	for i, m := range req.Messages {
		if rendered[i], err = comp.Render(m.Variables); err != nil {
			if mv, ok := errors.AsType[*MissingVariableError](err); ok {
				return h.fail(badRequest(CodeMissingVariable, fmt.Sprintf("messages[%d]: missing variable %q", i, mv.Name)))
			}
			return h.fail(badRequest(CodeRenderFailed, fmt.Sprintf("messages[%d]: %v", i, err)))
		}
	}
	resp, msgs, err := h.assemble(comp, req, rendered)
	if err != nil {
		return h.fail(err)
	}
	if len(msgs) > 0 {
		if err := h.q.Publish(ctx, msgs...); err != nil {
			return h.fail(fmt.Errorf("publish %d tasks and anchors: %w", len(msgs), errors.Join(queue.ErrUnavailable, err)))
		}
	}
	body, err := json.Marshal(resp)
	if err != nil {
		return h.fail(fmt.Errorf("encode response: %w", err))
	}
	h.metrics.requests.WithLabelValues("accepted").Inc()
	return http.StatusAccepted, append(body, '\n')
}

func (h *Handler) decode(raw []byte) (*SendRequest, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	// Numbers keep their literal text, so {{.orderNo}} of 12345678 does not
	// render as 1.2345678e+07.
	dec.UseNumber()
	var req SendRequest
	if err := dec.Decode(&req); err != nil {
		return nil, badRequest(CodeInvalidBody, "malformed JSON: "+err.Error())
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, badRequest(CodeInvalidBody, "trailing data after the JSON body")
	}
	switch {
	case req.TemplateID <= 0:
		return nil, badRequest(CodeInvalidBody, "templateId is required and must be positive")
	case len(req.Messages) == 0:
		return nil, badRequest(CodeInvalidBody, "messages is required")
	case len(req.Messages) > h.cfg.MaxMessages:
		return nil, badRequest(CodeTooManyMessages, fmt.Sprintf("%d messages; at most %d per request", len(req.Messages), h.cfg.MaxMessages))
	}
	for i, m := range req.Messages {
		switch {
		case len(m.Receivers) == 0:
			return nil, badRequest(CodeEmptyReceivers, fmt.Sprintf("messages[%d]: receivers is empty", i))
		case len(m.Receivers) > h.cfg.MaxReceivers:
			return nil, badRequest(CodeTooManyReceivers, fmt.Sprintf("messages[%d]: %d receivers; at most %d", i, len(m.Receivers), h.cfg.MaxReceivers))
		}
	}
	return &req, nil
}

// assemble builds the response and, in one batch, every task followed by
// the request's anchors packed into as few trace messages as
// push.PackAnchors allows. Tasks are keyed by messageId: a task fans out
// to many receivers, no order between messages is promised, and the id
// spreads messages evenly over partitions. An anchor pack is keyed by the
// first messageId it holds.
func (h *Handler) assemble(comp *Compiled, req *SendRequest, rendered []Rendered) (SendResponse, []queue.Message, error) {
	tpl := comp.Template
	now := h.now()
	businessID := push.BusinessID(tpl.Kind, tpl.ID, now, comp.Loc)
	topic := push.Topic(tpl.Channel, tpl.MsgType)
	ids := h.ids.next(len(req.Messages))
	resp := SendResponse{Messages: make([]MessageResult, len(req.Messages))}
	tasks := make([]queue.Message, 0, len(req.Messages))
	var anchors []push.Anchor
	var valid, invalid int
	for i, m := range req.Messages {
		res := MessageResult{MessageID: ids[i], BusinessID: businessID, Receivers: make([]string, 0, len(m.Receivers))}
		seen := make(map[string]struct{}, len(m.Receivers))
		for _, rcv := range m.Receivers {
			// A receiver repeated in one message would be one delivery anyway
			// (the send ledger is keyed by messageId + receiver).
			if _, dup := seen[rcv]; dup {
				continue
			}
			seen[rcv] = struct{}{}
			state, detail := push.StateReceived, ""
			if why := CheckReceiver(tpl.Channel, rcv); why != "" {
				state, detail = push.StateInvalidReceiver, why
				res.Invalid = append(res.Invalid, InvalidReceiver{Receiver: rcv, Reason: why})
				invalid++
			} else {
				res.Receivers = append(res.Receivers, rcv)
				valid++
			}
			anchors = append(anchors, push.Anchor{
				EventID:    ids[i] + "." + state + "." + strconv.Itoa(len(seen)-1),
				MessageID:  ids[i],
				BusinessID: businessID,
				Receiver:   rcv,
				State:      state,
				At:         now,
				Detail:     detail,
			})
		}
		resp.Messages[i] = res
		if len(res.Receivers) == 0 {
			continue
		}
		t, err := json.Marshal(newTask(tpl, ids[i], businessID, res.Receivers, rendered[i], m.BizID, now))
		if err != nil {
			return SendResponse{}, nil, fmt.Errorf("encode task: %w", err)
		}
		tasks = append(tasks, queue.Message{Topic: topic, Key: ids[i], Value: t})
	}
	h.metrics.receivers.WithLabelValues("valid").Add(float64(valid))
	h.metrics.receivers.WithLabelValues("invalid").Add(float64(invalid))
	packs, err := push.PackAnchors(anchors)
	if err != nil {
		return SendResponse{}, nil, err
	}
	for _, p := range packs {
		tasks = append(tasks, queue.Message{Topic: push.TraceTopic, Key: p.Key, Value: p.Value})
	}
	return resp, tasks, nil
}

func newTask(tpl push.Template, id, businessID string, receivers []string, r Rendered, bizID string, now time.Time) push.Task {
	return push.Task{
		MessageID:       id,
		BusinessID:      businessID,
		TemplateID:      tpl.ID,
		TemplateVersion: tpl.Version,
		Channel:         tpl.Channel,
		MsgType:         tpl.MsgType,
		AccountID:       tpl.AccountID,
		Quiet:           tpl.Quiet,
		TimeZone:        tpl.TimeZone,
		Receivers:       receivers,
		Subject:         r.Subject,
		Text:            r.Text,
		HTML:            r.HTML,
		BizID:           bizID,
		CreatedAt:       now,
	}
}
