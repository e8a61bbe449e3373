package bench

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/waypost/waypost/internal/push/client"
)

// Setup creates, with an admin key, a webhook channel account pointing at
// sinkURL and signing with secret, and an approved webhook template using
// it; it returns the template id. Names carry the time so repeated runs on
// one server do not collide.
func Setup(ctx context.Context, c *client.Client, sinkURL, secret string) (int64, error) {
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	var acc struct {
		ID string `json:"id"`
	}
	err := c.Do(ctx, http.MethodPost, "/api/v1/channel-accounts", nil, map[string]any{
		"channel": "webhook", "name": "bench sink " + suffix,
		"config": map[string]any{"url": sinkURL, "secret": secret},
	}, &acc)
	if err != nil {
		return 0, fmt.Errorf("bench setup: create webhook account: %w", err)
	}
	var tpl struct {
		ID int64 `json:"id"`
	}
	err = c.Do(ctx, http.MethodPost, "/api/v1/templates", nil, map[string]any{
		"name": "bench " + suffix, "channel": "webhook", "msgType": "notice", "kind": "realtime",
		"accountId": acc.ID, "quiet": "none", "content": map[string]any{"text": "bench message"},
	}, &tpl)
	if err != nil {
		return 0, fmt.Errorf("bench setup: create template: %w", err)
	}
	for _, action := range []string{"submit", "approve"} {
		path := "/api/v1/templates/" + strconv.FormatInt(tpl.ID, 10) + "/" + action
		if err := c.Do(ctx, http.MethodPost, path, nil, map[string]any{}, nil); err != nil {
			return 0, fmt.Errorf("bench setup: %s template %d: %w", action, tpl.ID, err)
		}
	}
	return tpl.ID, nil
}
