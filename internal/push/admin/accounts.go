package admin

import (
	"math"
	"net/http"
	"net/mail"
	"net/url"
	"slices"
	"strings"

	"github.com/waypost/waypost/internal/platform/httpx"
	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/store"
)

type accountBody struct {
	Channel push.Channel   `json:"channel"`
	Name    *string        `json:"name"`
	Config  map[string]any `json:"config"`
}

func (a *API) createAccount(w http.ResponseWriter, r *http.Request) {
	var body accountBody
	if err := a.decode(w, r, &body, false); err != nil {
		a.fail(w, r, err)
		return
	}
	if !slices.Contains(push.Channels(), body.Channel) {
		a.fail(w, r, invalid("channel %q is not one of %v", body.Channel, push.Channels()))
		return
	}
	name := ""
	if body.Name != nil {
		name = *body.Name
	}
	if body.Config == nil {
		body.Config = map[string]any{}
	}
	if err := validateAccount(body.Channel, name, body.Config); err != nil {
		a.fail(w, r, err)
		return
	}
	acc, err := a.st.CreateAccount(r.Context(), body.Channel, name, body.Config)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, acc)
}

func (a *API) listAccounts(w http.ResponseWriter, r *http.Request) {
	p, err := page(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ch := push.Channel(r.URL.Query().Get("channel"))
	if ch != "" && !slices.Contains(push.Channels(), ch) {
		a.fail(w, r, invalid("channel %q is not one of %v", ch, push.Channels()))
		return
	}
	list, err := a.st.ListAccounts(r.Context(), ch, p)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, listResponse("accounts", list, len(list), p))
}

func (a *API) getAccount(w http.ResponseWriter, r *http.Request) {
	acc, err := a.st.Account(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, acc)
}

// updateAccount merges the body's config into the stored one: a key set to
// null is removed, a nested object is merged, and a secret sent back in its
// masked form keeps the stored secret.
func (a *API) updateAccount(w http.ResponseWriter, r *http.Request) {
	var body accountBody
	if err := a.decode(w, r, &body, false); err != nil {
		a.fail(w, r, err)
		return
	}
	acc, err := a.st.UpdateAccount(r.Context(), r.PathValue("id"), func(acc *store.Account) error {
		if body.Channel != "" && body.Channel != acc.Channel {
			return invalid("channel cannot change (account is %s)", acc.Channel)
		}
		if body.Name != nil {
			acc.Name = *body.Name
		}
		mergeConfig(acc.Config, body.Config)
		return validateAccount(acc.Channel, acc.Name, acc.Config)
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, acc)
}

func mergeConfig(dst, patch map[string]any) {
	for k, v := range patch {
		switch tv := v.(type) {
		case nil:
			delete(dst, k)
		case map[string]any:
			if cur, ok := dst[k].(map[string]any); ok {
				mergeConfig(cur, tv)
				continue
			}
			dst[k] = tv
		case string:
			if _, had := dst[k]; had && store.IsSecretField(k) && store.IsMasked(tv) {
				continue
			}
			dst[k] = tv
		default:
			dst[k] = v
		}
	}
}

func (a *API) deleteAccount(w http.ResponseWriter, r *http.Request) {
	if err := a.st.DeleteAccount(r.Context(), r.PathValue("id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// validateAccount checks an account's name and its config for the channel.
func validateAccount(ch push.Channel, name string, cfg map[string]any) error {
	if strings.TrimSpace(name) == "" {
		return invalid("name is required")
	}
	if len([]rune(name)) > 191 {
		return invalid("name is longer than 191 characters")
	}
	if err := secretsAreStrings(cfg, "config."); err != nil {
		return err
	}
	switch ch {
	case push.ChannelEmail:
		return validateEmailConfig(cfg)
	case push.ChannelWebhook:
		return validateWebhookConfig(cfg)
	}
	return nil
}

func secretsAreStrings(cfg map[string]any, prefix string) error {
	for k, v := range cfg {
		if m, ok := v.(map[string]any); ok {
			if err := secretsAreStrings(m, prefix+k+"."); err != nil {
				return err
			}
			continue
		}
		if _, ok := v.(string); store.IsSecretField(k) && !ok {
			return invalid("%s%s must be a string", prefix, k)
		}
		if s, ok := v.(string); ok && store.IsSecretField(k) && store.IsMasked(s) {
			return invalid("%s%s is a masked value, not a secret", prefix, k)
		}
	}
	return nil
}

func str(cfg map[string]any, key string) (string, bool, error) {
	v, ok := cfg[key]
	if !ok || v == nil {
		return "", false, nil
	}
	s, isStr := v.(string)
	if !isStr {
		return "", true, invalid("config.%s must be a string", key)
	}
	return s, true, nil
}

func validateEmailConfig(cfg map[string]any) error {
	host, _, err := str(cfg, "host")
	if err != nil {
		return err
	}
	if strings.TrimSpace(host) == "" {
		return invalid("config.host is required for email")
	}
	port, ok := cfg["port"].(float64)
	if !ok || port != math.Trunc(port) || port < 1 || port > 65535 {
		return invalid("config.port must be an integer from 1 to 65535")
	}
	from, _, err := str(cfg, "from")
	if err != nil {
		return err
	}
	if _, err := mail.ParseAddress(from); err != nil {
		return invalid("config.from must be an email address: %v", err)
	}
	tls, _, err := str(cfg, "tls")
	if err != nil {
		return err
	}
	if !slices.Contains([]string{"none", "starttls", "tls"}, tls) {
		return invalid("config.tls must be none, starttls or tls")
	}
	user, _, err := str(cfg, "username")
	if err != nil {
		return err
	}
	pass, _, err := str(cfg, "password")
	if err != nil {
		return err
	}
	if user != "" && pass == "" {
		return invalid("config.password is required with config.username")
	}
	return nil
}

func validateWebhookConfig(cfg map[string]any) error {
	raw, _, err := str(cfg, "url")
	if err != nil {
		return err
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return invalid("config.url must be an absolute http or https URL")
	}
	secret, _, err := str(cfg, "secret")
	if err != nil {
		return err
	}
	if secret == "" {
		return invalid("config.secret is required for webhook (it signs every request)")
	}
	return nil
}
