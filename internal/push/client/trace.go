package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/waypost/waypost/internal/push/trace"
	"github.com/waypost/waypost/internal/push/trace/receipt"
)

// TraceMessage returns the trace events of a message.
func (c *Client) TraceMessage(ctx context.Context, messageID string) (trace.EventsResponse, error) {
	var out trace.EventsResponse
	err := c.Do(ctx, http.MethodGet, "/api/v1/trace/messages/"+url.PathEscape(messageID), nil, nil, &out)
	return out, err
}

// TraceReceiver returns a receiver's trace events of one day; date is
// yyyyMMdd, or empty for the server's today.
func (c *Client) TraceReceiver(ctx context.Context, receiver, date string) (trace.EventsResponse, error) {
	var out trace.EventsResponse
	err := c.Do(ctx, http.MethodGet, "/api/v1/trace/receivers/"+url.PathEscape(receiver)+dateQuery(date), nil, nil, &out)
	return out, err
}

// TraceTemplate returns a template's counts per state and funnel of one day;
// date is yyyyMMdd, or empty for the server's today.
func (c *Client) TraceTemplate(ctx context.Context, templateID int64, date string) (trace.TemplateDay, error) {
	var out trace.TemplateDay
	err := c.Do(ctx, http.MethodGet, "/api/v1/trace/templates/"+strconv.FormatInt(templateID, 10)+dateQuery(date), nil, nil, &out)
	return out, err
}

// PostReceipts records delivery receipts.
func (c *Client) PostReceipts(ctx context.Context, rs []receipt.Receipt) (trace.RecordResult, error) {
	var out trace.RecordResult
	err := c.Do(ctx, http.MethodPost, "/api/v1/trace/receipts", nil, trace.ReceiptsRequest{Receipts: rs}, &out)
	return out, err
}

func dateQuery(date string) string {
	if date == "" {
		return ""
	}
	return "?date=" + url.QueryEscape(date)
}
