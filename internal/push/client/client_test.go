package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/httpx"
	"github.com/waypost/waypost/internal/push/access"
)

func TestSend(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer wp_k" {
			httpx.WriteError(w, http.StatusUnauthorized, "unauthorized", "missing bearer API key")
			return
		}
		var req access.SendRequest
		require.NoError(t, json.NewDecoder(r.Body).Decode(&req))
		if req.TemplateID == 404 {
			httpx.WriteError(w, http.StatusNotFound, "unknown_template", "no template 404")
			return
		}
		require.Equal(t, "idem-1", r.Header.Get("Idempotency-Key"))
		httpx.WriteJSON(w, http.StatusAccepted, access.SendResponse{Messages: []access.MessageResult{{MessageID: "m1", Receivers: req.Messages[0].Receivers}}})
	}))
	defer srv.Close()

	c, err := New(srv.URL+"/", "wp_k", nil)
	require.NoError(t, err)
	out, err := c.Send(context.Background(), access.SendRequest{TemplateID: 1, Messages: []access.MessageRequest{{Receivers: []string{"a@x.io"}}}}, "idem-1")
	require.NoError(t, err)
	require.Equal(t, "m1", out.Messages[0].MessageID)

	_, err = c.Send(context.Background(), access.SendRequest{TemplateID: 404}, "")
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, "unknown_template", apiErr.Code)
	require.Equal(t, http.StatusNotFound, apiErr.Status)

	bad, err := New(srv.URL, "wp_other", nil)
	require.NoError(t, err)
	_, err = bad.Send(context.Background(), access.SendRequest{TemplateID: 1}, "")
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, "unauthorized", apiErr.Code)

	_, err = New("", "k", nil)
	require.ErrorContains(t, err, "--server")
	_, err = New("http://x", "", nil)
	require.ErrorContains(t, err, "--key")
}
