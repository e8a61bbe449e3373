package access

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
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
	resp, tasks, trace, err := h.assemble(comp, req, rendered)
	if err != nil {
		return h.fail(err)
	}
	if err := h.pub.publish(ctx, tasks, trace); err != nil {
		return h.fail(errors.Join(queue.ErrUnavailable, err))
	}
	h.metrics.accepted.Inc()
	return http.StatusAccepted, append(resp.appendJSON(make([]byte, 0, 128*len(resp.Messages))), '\n')
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

// assemble builds the response, every task, and the request's trace
// records: per message one push.ReceiverSet of its accepted receivers (the
// trace consumer expands it into their received anchors) and one
// invalid_receiver anchor per refused receiver. Tasks are keyed by
// messageId: a task fans out to many receivers, no order between messages
// is promised, and the id spreads messages evenly over partitions.
func (h *Handler) assemble(comp *Compiled, req *SendRequest, rendered []Rendered) (SendResponse, []queue.Message, []traceItem, error) {
	tpl := comp.Template
	now := h.now()
	businessID := comp.BusinessID(now)
	topic := push.Topic(tpl.Channel, tpl.MsgType)
	ids := h.ids.next(len(req.Messages))
	resp := SendResponse{Messages: make([]MessageResult, len(req.Messages))}
	tasks := make([]queue.Message, 0, len(req.Messages))
	trace := make([]traceItem, 0, len(req.Messages))
	var valid, invalid int
	for i, m := range req.Messages {
		res := MessageResult{MessageID: ids[i], BusinessID: businessID, Receivers: make([]string, 0, len(m.Receivers))}
		receivers := uniqueReceivers(m.Receivers)
		for j, rcv := range receivers {
			why := CheckReceiver(tpl.Channel, rcv)
			if why == "" {
				res.Receivers = append(res.Receivers, rcv)
				continue
			}
			res.Invalid = append(res.Invalid, InvalidReceiver{Receiver: rcv, Reason: why})
			v, err := json.Marshal(push.Anchor{
				EventID:    ids[i] + "." + push.StateInvalidReceiver + "." + strconv.Itoa(j),
				MessageID:  ids[i],
				BusinessID: businessID,
				Receiver:   rcv,
				State:      push.StateInvalidReceiver,
				At:         now,
				Detail:     why,
			})
			if err != nil {
				return SendResponse{}, nil, nil, fmt.Errorf("encode anchor: %w", err)
			}
			trace = append(trace, traceItem{messageID: ids[i], value: v})
		}
		valid += len(res.Receivers)
		invalid += len(res.Invalid)
		resp.Messages[i] = res
		if len(res.Receivers) == 0 {
			continue
		}
		set := push.ReceiverSet{MessageID: ids[i], BusinessID: businessID, State: push.StateReceived, At: now, Receivers: res.Receivers}
		trace = append(trace, traceItem{messageID: ids[i], value: set.AppendJSON(make([]byte, 0, 128+32*len(res.Receivers)))})
		task := newTask(tpl, ids[i], businessID, res.Receivers, rendered[i], m.BizID, now)
		tasks = append(tasks, queue.Message{Topic: topic, Key: ids[i], Value: task.AppendJSON(make([]byte, 0, 512))})
	}
	h.metrics.validReceivers.Add(float64(valid))
	if invalid > 0 {
		h.metrics.invalidReceivers.Add(float64(invalid))
	}
	return resp, tasks, trace, nil
}

// uniqueReceivers drops repeats, keeping first occurrences in order: a
// receiver repeated in one message would be one delivery anyway (the send
// ledger is keyed by messageId + receiver).
func uniqueReceivers(rs []string) []string {
	if len(rs) > 16 {
		seen := make(map[string]struct{}, len(rs))
		out := make([]string, 0, len(rs))
		for _, r := range rs {
			if _, dup := seen[r]; !dup {
				seen[r] = struct{}{}
				out = append(out, r)
			}
		}
		return out
	}
	// Short lists: a quadratic scan, allocating only when there is a repeat.
	for i := 1; i < len(rs); i++ {
		if slices.Contains(rs[:i], rs[i]) {
			out := make([]string, 0, len(rs))
			for j, r := range rs {
				if !slices.Contains(rs[:j], r) {
					out = append(out, r)
				}
			}
			return out
		}
	}
	return rs
}

// appendJSON appends r as json.Marshal would (a test holds them equal).
func (r *SendResponse) appendJSON(b []byte) []byte {
	b = append(b, `{"messages":`...)
	if r.Messages == nil {
		return append(b, "null}"...)
	}
	b = append(b, '[')
	for i := range r.Messages {
		m := &r.Messages[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"messageId":`...)
		b = push.AppendJSONString(b, m.MessageID)
		b = append(b, `,"businessId":`...)
		b = push.AppendJSONString(b, m.BusinessID)
		b = append(b, `,"receivers":`...)
		b = push.AppendJSONStrings(b, m.Receivers)
		if len(m.Invalid) > 0 {
			b = append(b, `,"invalid":[`...)
			for j, inv := range m.Invalid {
				if j > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"receiver":`...)
				b = push.AppendJSONString(b, inv.Receiver)
				b = append(b, `,"reason":`...)
				b = push.AppendJSONString(b, inv.Reason)
				b = append(b, '}')
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
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
