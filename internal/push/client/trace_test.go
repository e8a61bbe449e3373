package client

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/httpx"
	"github.com/waypost/waypost/internal/push/trace"
	"github.com/waypost/waypost/internal/push/trace/receipt"
)

func TestTraceCalls(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.RequestURI())
		switch {
		case r.Method == http.MethodPost:
			var req trace.ReceiptsRequest
			require.NoError(t, json.NewDecoder(r.Body).Decode(&req))
			httpx.WriteJSON(w, http.StatusAccepted, trace.RecordResult{Recorded: len(req.Receipts), Rejected: []trace.Rejected{}})
		case r.URL.Path == "/api/v1/trace/templates/42":
			httpx.WriteJSON(w, http.StatusOK, trace.TemplateDay{BusinessID: "2000004220260301", Counts: map[string]int64{"sent": 3}})
		case r.URL.Path == "/api/v1/trace/messages/gone":
			httpx.WriteError(w, http.StatusForbidden, "forbidden", "key lacks scope trace")
		default:
			httpx.WriteJSON(w, http.StatusOK, trace.EventsResponse{Events: []trace.Event{{MessageID: "m1", Receiver: r.PathValue("receiver")}}, Source: "realtime"})
		}
	}))
	defer srv.Close()
	c, err := New(srv.URL, "wp_k", nil)
	require.NoError(t, err)
	ctx := t.Context()

	evs, err := c.TraceMessage(ctx, "m1")
	require.NoError(t, err)
	require.Equal(t, "realtime", evs.Source)
	_, err = c.TraceReceiver(ctx, "a/b@x.io", "20260301")
	require.NoError(t, err)
	_, err = c.TraceReceiver(ctx, "a@x.io", "")
	require.NoError(t, err)
	day, err := c.TraceTemplate(ctx, 42, "20260301")
	require.NoError(t, err)
	require.EqualValues(t, 3, day.Counts["sent"])
	res, err := c.PostReceipts(ctx, []receipt.Receipt{{MessageID: "m1", Receiver: "a@x.io", State: "delivered"}})
	require.NoError(t, err)
	require.Equal(t, 1, res.Recorded)
	_, err = c.TraceMessage(ctx, "gone")
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, "forbidden", apiErr.Code)

	require.Equal(t, []string{
		"GET /api/v1/trace/messages/m1",
		"GET /api/v1/trace/receivers/a%2Fb@x.io?date=20260301",
		"GET /api/v1/trace/receivers/a@x.io",
		"GET /api/v1/trace/templates/42?date=20260301",
		"POST /api/v1/trace/receipts",
		"GET /api/v1/trace/messages/gone",
	}, got)
}
