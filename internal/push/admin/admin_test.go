package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/auth"
	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
	"github.com/waypost/waypost/internal/push/admin"
	"github.com/waypost/waypost/internal/push/store"
)

const adminKey = "wp_admin-key-for-tests-0123456789"

type env struct {
	t      *testing.T
	st     *store.Store
	h      http.Handler
	tplKey string
	send   string
}

// newEnv serves the admin API over a fresh SQLite store (the store's own
// tests cover the other engines) with an admin, a templates and a send key.
func newEnv(t *testing.T) *env {
	t.Helper()
	db := sqltest.New(t, sqldb.SQLite, store.Migrations())
	st, err := store.New(db, []byte(strings.Repeat("k", store.MasterKeySize)), nil)
	require.NoError(t, err)
	ctx := context.Background()
	_, err = st.EnsureKey(ctx, adminKey, auth.AllScopes())
	require.NoError(t, err)
	_, tplKey, err := st.CreateKey(ctx, store.DefaultAppID, "authors", []string{auth.ScopeTemplates})
	require.NoError(t, err)
	_, send, err := st.CreateKey(ctx, store.DefaultAppID, "sender", []string{auth.ScopeSend})
	require.NoError(t, err)
	mux := http.NewServeMux()
	admin.New(st, nil).Register(mux, st)
	return &env{t: t, st: st, h: mux, tplKey: tplKey, send: send}
}

type resp struct {
	status int
	raw    string
	body   map[string]any
}

func (r resp) code() string {
	e, _ := r.body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func (e *env) do(method, path, key, body string) resp {
	e.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	out := resp{status: rec.Code, raw: rec.Body.String()}
	if rec.Body.Len() > 0 {
		require.NoError(e.t, json.Unmarshal(rec.Body.Bytes(), &out.body), rec.Body.String())
	}
	return out
}

func TestAuthOnRoutes(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, method, path, key string
		status                  int
		code                    string
	}{
		{"no key", "GET", "/api/v1/templates", "", 401, "unauthorized"},
		{"unknown key", "GET", "/api/v1/templates", "wp_unknown-key-0123456789abcdef", 401, "unauthorized"},
		{"send key on templates", "GET", "/api/v1/templates", e.send, 403, "forbidden"},
		{"templates key on accounts", "GET", "/api/v1/channel-accounts", e.tplKey, 403, "forbidden"},
		{"templates key on keys", "POST", "/api/v1/keys", e.tplKey, 403, "forbidden"},
		{"templates key on templates", "GET", "/api/v1/templates", e.tplKey, 200, ""},
		{"admin implies templates", "GET", "/api/v1/templates", adminKey, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, tc.key, "")
			require.Equal(t, tc.status, r.status, r.raw)
			require.Equal(t, tc.code, r.code())
		})
	}
}

const emailAccount = `{"channel":"email","name":"mail","config":{"host":"127.0.0.1","port":2525,"username":"u",
	"password":"smtp-password-1234","from":"Waypost <noreply@example.com>","tls":"starttls"}}`

func TestChannelAccounts(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/api/v1/channel-accounts", adminKey, emailAccount)
	require.Equal(t, 201, r.status, r.raw)
	id := r.body["id"].(string)
	require.NotContains(t, r.raw, "smtp-password-1234")
	require.Equal(t, "****34", r.body["config"].(map[string]any)["password"])

	r = e.do("POST", "/api/v1/channel-accounts", adminKey,
		`{"channel":"webhook","name":"hook","config":{"url":"https://example.com/hook","secret":"webhook-secret-xyz"}}`)
	require.Equal(t, 201, r.status, r.raw)
	require.NotContains(t, r.raw, "webhook-secret-xyz")

	bad := []struct{ name, body, msg string }{
		{"malformed", `{"channel":`, "malformed JSON"},
		{"empty", ``, "empty"},
		{"trailing", `{"channel":"inbox","name":"x"} {}`, "after the JSON"},
		{"unknown channel", `{"channel":"pigeon","name":"x","config":{}}`, "channel"},
		{"no name", `{"channel":"inbox","config":{}}`, "name is required"},
		{"email no host", `{"channel":"email","name":"m","config":{"port":25,"from":"a@b.io","tls":"none"}}`, "config.host"},
		{"email bad port", `{"channel":"email","name":"m","config":{"host":"h","port":70000,"from":"a@b.io","tls":"none"}}`, "config.port"},
		{"email port string", `{"channel":"email","name":"m","config":{"host":"h","port":"25","from":"a@b.io","tls":"none"}}`, "config.port"},
		{"email bad from", `{"channel":"email","name":"m","config":{"host":"h","port":25,"from":"nobody","tls":"none"}}`, "config.from"},
		{"email bad tls", `{"channel":"email","name":"m","config":{"host":"h","port":25,"from":"a@b.io","tls":"ssl"}}`, "config.tls"},
		{"email user without password", `{"channel":"email","name":"m","config":{"host":"h","port":25,"from":"a@b.io","tls":"tls","username":"u"}}`, "config.password"},
		{"secret not a string", `{"channel":"sms","name":"m","config":{"appSecret":42}}`, "config.appSecret must be a string"},
		{"webhook bad url", `{"channel":"webhook","name":"w","config":{"url":"ftp://x","secret":"s"}}`, "config.url"},
		{"webhook no secret", `{"channel":"webhook","name":"w","config":{"url":"https://x.io"}}`, "config.secret"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", "/api/v1/channel-accounts", adminKey, tc.body)
			require.Equal(t, 400, r.status, r.raw)
			require.Equal(t, "invalid_body", r.code())
			require.Contains(t, r.body["error"].(map[string]any)["message"], tc.msg)
		})
	}
	t.Run("too large", func(t *testing.T) {
		big := `{"channel":"inbox","name":"` + strings.Repeat("x", admin.DefaultMaxBody) + `"}`
		r := e.do("POST", "/api/v1/channel-accounts", adminKey, big)
		require.Equal(t, 413, r.status)
		require.Equal(t, "payload_too_large", r.code())
	})

	r = e.do("GET", "/api/v1/channel-accounts/"+id, adminKey, "")
	require.Equal(t, 200, r.status)
	require.NotContains(t, r.raw, "smtp-password-1234")
	require.Equal(t, "email", r.body["channel"])
	r = e.do("GET", "/api/v1/channel-accounts/acc_nope", adminKey, "")
	require.Equal(t, 404, r.status)
	require.Equal(t, "unknown_account", r.code())

	r = e.do("GET", "/api/v1/channel-accounts?limit=1", adminKey, "")
	require.Equal(t, 200, r.status)
	require.Len(t, r.body["accounts"], 1)
	require.EqualValues(t, 1, r.body["nextOffset"])
	require.NotContains(t, r.raw, "smtp-password-1234")
	require.NotContains(t, r.raw, "webhook-secret-xyz")
	r = e.do("GET", "/api/v1/channel-accounts?channel=email&offset=0", adminKey, "")
	require.Len(t, r.body["accounts"], 1)
	r = e.do("GET", "/api/v1/channel-accounts?limit=-1", adminKey, "")
	require.Equal(t, 400, r.status)

	// Sending back the masked secret keeps the stored one.
	r = e.do("PATCH", "/api/v1/channel-accounts/"+id, adminKey, `{"name":"mail2","config":{"password":"****34","port":465,"tls":"tls"}}`)
	require.Equal(t, 200, r.status, r.raw)
	require.Equal(t, "mail2", r.body["name"])
	full, err := e.st.AccountForSending(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, "smtp-password-1234", full.Config["password"])
	require.EqualValues(t, 465, full.Config["port"])

	r = e.do("PATCH", "/api/v1/channel-accounts/"+id, adminKey, `{"config":{"password":"new-password-5678"}}`)
	require.Equal(t, 200, r.status, r.raw)
	full, err = e.st.AccountForSending(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, "new-password-5678", full.Config["password"])

	for _, body := range []string{`{"channel":"sms"}`, `{"config":{"host":null}}`, `{"name":""}`} {
		r = e.do("PATCH", "/api/v1/channel-accounts/"+id, adminKey, body)
		require.Equal(t, 400, r.status, body)
		require.Equal(t, "invalid_body", r.code())
	}
	r = e.do("PATCH", "/api/v1/channel-accounts/acc_nope", adminKey, `{"name":"x"}`)
	require.Equal(t, 404, r.status)

	r = e.do("DELETE", "/api/v1/channel-accounts/"+id, adminKey, "")
	require.Equal(t, 204, r.status, r.raw)
	r = e.do("DELETE", "/api/v1/channel-accounts/"+id, adminKey, "")
	require.Equal(t, 404, r.status)
	require.Equal(t, "unknown_account", r.code())
}

func TestKeys(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/api/v1/keys", adminKey, `{"name":"ci","scopes":["trace"]}`)
	require.Equal(t, 201, r.status, r.raw)
	plain := r.body["key"].(string)
	id := r.body["id"].(string)
	require.True(t, strings.HasPrefix(plain, auth.KeyPrefix))
	require.Equal(t, store.DefaultAppID, r.body["appId"])

	p, err := e.st.Authenticate(context.Background(), plain)
	require.NoError(t, err)
	require.Equal(t, []string{auth.ScopeTrace}, p.Scopes)

	for _, body := range []string{`{"name":"x","scopes":["root"]}`, `{"name":"x","scopes":[]}`, `{"scopes":["send"]}`} {
		r = e.do("POST", "/api/v1/keys", adminKey, body)
		require.Equal(t, 400, r.status, body)
		require.Equal(t, "invalid_body", r.code())
	}

	r = e.do("DELETE", "/api/v1/keys/"+id, adminKey, "")
	require.Equal(t, 204, r.status)
	_, err = e.st.Authenticate(context.Background(), plain)
	require.ErrorIs(t, err, auth.ErrUnauthorized)
	r = e.do("DELETE", "/api/v1/keys/key_nope", adminKey, "")
	require.Equal(t, 404, r.status)
	require.Equal(t, "unknown_key", r.code())
}

// account creates an account of channel and returns its id.
func (e *env) account(channel string) string {
	e.t.Helper()
	body := map[string]string{
		"email":   emailAccount,
		"webhook": `{"channel":"webhook","name":"hook","config":{"url":"https://example.com/h","secret":"sig-secret-123"}}`,
		"sms":     `{"channel":"sms","name":"sms","config":{"provider":"tencent","appSecret":"sms-app-secret"}}`,
	}[channel]
	r := e.do("POST", "/api/v1/channel-accounts", adminKey, body)
	require.Equal(e.t, 201, r.status, r.raw)
	return r.body["id"].(string)
}

func TestTemplateValidation(t *testing.T) {
	e := newEnv(t)
	mail, sms := e.account("email"), e.account("sms")
	good := `{"name":"welcome","channel":"email","msgType":"notice","kind":"realtime","accountId":"` + mail +
		`","quiet":"delay","timezone":"Asia/Shanghai","content":{"subject":"Hi {{.name}}","body":"<b>{{.name}}</b>","html":true}}`
	r := e.do("POST", "/api/v1/templates", e.tplKey, good)
	require.Equal(t, 201, r.status, r.raw)
	require.Equal(t, "draft", r.body["status"])
	require.EqualValues(t, 1, r.body["version"])

	r = e.do("POST", "/api/v1/templates", e.tplKey, `{"name":"inbox","channel":"inbox","msgType":"notice","content":{"text":"hi"}}`)
	require.Equal(t, 201, r.status, r.raw)
	require.Equal(t, "realtime", r.body["kind"], "kind defaults to realtime")
	require.Equal(t, "UTC", r.body["timezone"], "timezone defaults to UTC")
	require.Equal(t, "none", r.body["quiet"], "quiet defaults to none")

	tpl := func(mut string) string {
		return fmt.Sprintf(`{"name":"n","channel":"sms","msgType":"notice","accountId":%q,"content":{"text":"x"},%s}`, sms, mut)
	}
	bad := []struct {
		name, body string
		status     int
		code, msg  string
	}{
		{"no name", tpl(`"name":""`), 400, "invalid_body", "name"},
		{"bad channel", tpl(`"channel":"fax"`), 400, "invalid_body", "channel"},
		{"bad msgType", tpl(`"msgType":"spam"`), 400, "invalid_body", "msgType"},
		{"bad kind", tpl(`"kind":"later"`), 400, "invalid_body", "kind"},
		{"bad quiet", tpl(`"quiet":"mute"`), 400, "invalid_body", "quiet"},
		{"bad timezone", tpl(`"timezone":"Mars/Olympus"`), 400, "invalid_body", "timezone"},
		{"local timezone", tpl(`"timezone":"Local"`), 400, "invalid_body", "timezone"},
		{"sms without account", tpl(`"accountId":""`), 400, "invalid_body", "accountId is required"},
		{"unknown account", tpl(`"accountId":"acc_nope"`), 404, "unknown_account", "acc_nope"},
		{"account of another channel", tpl(`"accountId":"` + mail + `"`), 400, "invalid_body", "email account"},
		{"sms with subject", tpl(`"content":{"text":"x","subject":"s"}`), 400, "invalid_body", "email only"},
		{"sms without text", tpl(`"content":{"text":"  "}`), 400, "invalid_body", "content.text is required"},
		{"bad text syntax", tpl(`"content":{"text":"{{.name"}`), 400, "invalid_body", "content.text"},
		{"email without subject", `{"name":"n","channel":"email","msgType":"notice","accountId":"` + mail + `","content":{"body":"b"}}`, 400, "invalid_body", "subject"},
		{"email with text", `{"name":"n","channel":"email","msgType":"notice","accountId":"` + mail + `","content":{"subject":"s","body":"b","text":"t"}}`, 400, "invalid_body", "text does not apply"},
		{"bad html syntax", `{"name":"n","channel":"email","msgType":"notice","accountId":"` + mail + `","content":{"subject":"s","body":"{{if}}","html":true}}`, 400, "invalid_body", "content.body"},
		{"malformed", `{"name":`, 400, "invalid_body", "malformed"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", "/api/v1/templates", e.tplKey, tc.body)
			require.Equal(t, tc.status, r.status, r.raw)
			require.Equal(t, tc.code, r.code())
			require.Contains(t, r.body["error"].(map[string]any)["message"], tc.msg)
		})
	}
	t.Run("too large", func(t *testing.T) {
		r := e.do("POST", "/api/v1/templates", e.tplKey, tpl(`"name":"`+strings.Repeat("x", admin.DefaultMaxBody)+`"`))
		require.Equal(t, 413, r.status)
		require.Equal(t, "payload_too_large", r.code())
	})
}

func TestTemplateLifecycle(t *testing.T) {
	e := newEnv(t)
	hook := e.account("webhook")
	r := e.do("POST", "/api/v1/templates", e.tplKey, `{"name":"order","channel":"webhook","msgType":"notice","kind":"realtime",
		"accountId":"`+hook+`","quiet":"none","timezone":"Europe/Berlin","content":{"text":"order {{.id}}"}}`)
	require.Equal(t, 201, r.status, r.raw)
	id := fmt.Sprint(r.body["id"])
	base := "/api/v1/templates/" + id

	step := func(method, path, body string, status int, code string) resp {
		t.Helper()
		r := e.do(method, path, e.tplKey, body)
		require.Equal(t, status, r.status, r.raw)
		require.Equal(t, code, r.code())
		return r
	}
	step("POST", base+"/approve", "", 409, "invalid_transition")
	r = step("POST", base+"/submit", "", 200, "")
	require.Equal(t, "pending", r.body["status"])
	require.NotEmpty(t, r.body["submittedBy"])
	step("POST", base+"/submit", "", 409, "invalid_transition")
	step("POST", base+"/reject", `{}`, 400, "invalid_body")
	r = step("POST", base+"/reject", `{"reason":"needs a greeting"}`, 200, "")
	require.Equal(t, "rejected", r.body["status"])
	require.Equal(t, "needs a greeting", r.body["rejectReason"])

	r = step("PATCH", base, `{"content":{"text":"hello, order {{.id}}"}}`, 200, "")
	require.Equal(t, "draft", r.body["status"])
	step("PATCH", base, `{"channel":"sms"}`, 400, "invalid_body")
	step("PATCH", base, `{"timezone":"Nowhere/Else"}`, 400, "invalid_body")
	r = step("POST", base+"/submit", "", 200, "")
	v := r.body["version"].(float64)
	step("POST", base+"/approve", fmt.Sprintf(`{"version":%d}`, int(v)-1), 409, "version_conflict")
	r = step("POST", base+"/approve", fmt.Sprintf(`{"version":%d}`, int(v)), 200, "")
	require.Equal(t, "approved", r.body["status"])
	require.NotEmpty(t, r.body["reviewedBy"])

	r = step("POST", base+"/copy", "", 200, "")
	require.Equal(t, "draft", r.body["status"])
	require.NotEqual(t, id, fmt.Sprint(r.body["id"]))
	require.Equal(t, "order (copy)", r.body["name"])

	r = step("PATCH", base, `{"name":"order v2"}`, 200, "")
	require.Equal(t, "draft", r.body["status"], "an edit of an approved template needs re-approval")

	r = step("GET", base, "", 200, "")
	require.Equal(t, "order v2", r.body["name"])
	r = step("GET", "/api/v1/templates?limit=1", "", 200, "")
	require.Len(t, r.body["templates"], 1)
	r = step("GET", "/api/v1/templates?status=draft&channel=webhook", "", 200, "")
	require.Len(t, r.body["templates"], 2)

	r = step("DELETE", base, "", 200, "")
	require.Equal(t, "disabled", r.body["status"])
	step("PATCH", base, `{"name":"again"}`, 409, "invalid_transition")
	step("POST", base+"/submit", "", 409, "invalid_transition")

	step("GET", "/api/v1/templates/999999", "", 404, "unknown_template")
	step("GET", "/api/v1/templates/abc", "", 404, "unknown_template")
	step("POST", "/api/v1/templates/999999/submit", "", 404, "unknown_template")
	step("POST", "/api/v1/templates/999999/copy", "", 404, "unknown_template")
	step("DELETE", "/api/v1/templates/999999", "", 404, "unknown_template")
	step("PATCH", "/api/v1/templates/999999", `{"name":"x"}`, 404, "unknown_template")
	step("POST", base+"/submit", `{"version":`, 400, "invalid_body")

	// An account still used by a live template cannot be deleted.
	r = e.do("DELETE", "/api/v1/channel-accounts/"+hook, adminKey, "")
	require.Equal(t, 409, r.status)
	require.Equal(t, "account_in_use", r.code())
}
