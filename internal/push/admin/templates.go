package admin

import (
	htmltemplate "html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"
	// The zone database is embedded so timezone validation does not depend
	// on the host having one.
	_ "time/tzdata"

	"github.com/waypost/waypost/internal/platform/httpx"
	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/store"
)

// templateBody is a create or a patch; on a patch, absent fields keep their
// value and a given content replaces the whole content.
type templateBody struct {
	Name      *string       `json:"name"`
	Channel   *push.Channel `json:"channel"`
	MsgType   *push.MsgType `json:"msgType"`
	Kind      *push.Kind    `json:"kind"`
	AccountID *string       `json:"accountId"`
	Quiet     *push.Quiet   `json:"quiet"`
	TimeZone  *string       `json:"timezone"`
	Content   *push.Content `json:"content"`
	Version   int64         `json:"version"`
}

func (b templateBody) apply(t *push.Template) {
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&t.Name, b.Name)
	set(&t.AccountID, b.AccountID)
	set(&t.TimeZone, b.TimeZone)
	if b.MsgType != nil {
		t.MsgType = *b.MsgType
	}
	if b.Kind != nil {
		t.Kind = *b.Kind
	}
	if b.Quiet != nil {
		t.Quiet = *b.Quiet
	}
	if b.Content != nil {
		t.Content = *b.Content
	}
}

// actionBody is the optional body of submit/approve/reject: the version the
// caller saw (0: any) and, for reject, the reason.
type actionBody struct {
	Version int64  `json:"version"`
	Reason  string `json:"reason"`
}

func templateID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, push.ErrUnknownTemplate
	}
	return id, nil
}

func (a *API) createTemplate(w http.ResponseWriter, r *http.Request) {
	var body templateBody
	if err := a.decode(w, r, &body, false); err != nil {
		a.fail(w, r, err)
		return
	}
	t := push.Template{Kind: push.KindRealtime, Quiet: push.QuietNone, TimeZone: "UTC"}
	if body.Channel != nil {
		t.Channel = *body.Channel
	}
	body.apply(&t)
	if err := a.validateTemplate(r, t); err != nil {
		a.fail(w, r, err)
		return
	}
	created, err := a.st.CreateTemplate(r.Context(), t, caller(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, created)
}

func (a *API) listTemplates(w http.ResponseWriter, r *http.Request) {
	p, err := page(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	f := store.TemplateFilter{
		Channel: push.Channel(r.URL.Query().Get("channel")),
		Status:  push.TemplateStatus(r.URL.Query().Get("status")),
	}
	list, err := a.st.ListTemplates(r.Context(), f, p)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, listResponse("templates", list, len(list), p))
}

func (a *API) getTemplate(w http.ResponseWriter, r *http.Request) {
	id, err := templateID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	t, err := a.st.Template(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, t)
}

func (a *API) updateTemplate(w http.ResponseWriter, r *http.Request) {
	id, err := templateID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var body templateBody
	if err := a.decode(w, r, &body, false); err != nil {
		a.fail(w, r, err)
		return
	}
	t, err := a.st.UpdateTemplate(r.Context(), id, body.Version, func(t *push.Template) error {
		if body.Channel != nil && *body.Channel != t.Channel {
			return invalid("channel cannot change (template is %s); copy it instead", t.Channel)
		}
		body.apply(t)
		return a.validateTemplate(r, *t)
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, t)
}

func (a *API) deleteTemplate(w http.ResponseWriter, r *http.Request) {
	id, err := templateID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	t, err := a.st.Transition(r.Context(), id, 0, store.ActionDisable, caller(r), "")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, t)
}

func (a *API) transition(action store.Action) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := templateID(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		var body actionBody
		if err := a.decode(w, r, &body, true); err != nil {
			a.fail(w, r, err)
			return
		}
		if body.Version < 0 {
			a.fail(w, r, invalid("version must be positive"))
			return
		}
		body.Reason = strings.TrimSpace(body.Reason)
		if action == store.ActionReject && body.Reason == "" {
			a.fail(w, r, invalid("reason is required to reject a template"))
			return
		}
		if len([]rune(body.Reason)) > 1000 {
			a.fail(w, r, invalid("reason is longer than 1000 characters"))
			return
		}
		t, err := a.st.Transition(r.Context(), id, body.Version, action, caller(r), body.Reason)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, t)
	}
}

func (a *API) copyTemplate(w http.ResponseWriter, r *http.Request) {
	id, err := templateID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	t, err := a.st.CopyTemplate(r.Context(), id, caller(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, t)
}

// validateTemplate checks every field of t, its content for its channel
// (parsing it as a Go template) and its account.
func (a *API) validateTemplate(r *http.Request, t push.Template) error {
	switch {
	case strings.TrimSpace(t.Name) == "":
		return invalid("name is required")
	case len([]rune(t.Name)) > 191:
		return invalid("name is longer than 191 characters")
	case !slices.Contains(push.Channels(), t.Channel):
		return invalid("channel %q is not one of %v", t.Channel, push.Channels())
	case !slices.Contains(push.MsgTypes(), t.MsgType):
		return invalid("msgType %q is not one of %v", t.MsgType, push.MsgTypes())
	case t.Kind != push.KindRealtime && t.Kind != push.KindScheduled:
		return invalid("kind %q is not realtime or scheduled", t.Kind)
	case !slices.Contains([]push.Quiet{push.QuietNone, push.QuietDrop, push.QuietDelay}, t.Quiet):
		return invalid("quiet %q is not none, drop or delay", t.Quiet)
	}
	if err := validateTimeZone(t.TimeZone); err != nil {
		return err
	}
	if err := validateContent(t.Channel, t.Content); err != nil {
		return err
	}
	if t.AccountID == "" {
		if t.Channel != push.ChannelInbox {
			return invalid("accountId is required for channel %s", t.Channel)
		}
		return nil
	}
	acc, err := a.st.Account(r.Context(), t.AccountID)
	if err != nil {
		return err
	}
	if acc.Channel != t.Channel {
		return invalid("account %s is a %s account, not %s", acc.ID, acc.Channel, t.Channel)
	}
	return nil
}

// validateContent checks that the content has the fields of its channel and
// that each parses as a template the way the access layer will render it.
func validateContent(ch push.Channel, c push.Content) error {
	parseText := func(field, s string) error {
		if _, err := texttemplate.New(field).Option("missingkey=error").Parse(s); err != nil {
			return invalid("content.%s: %v", field, err)
		}
		return nil
	}
	if ch != push.ChannelEmail {
		if c.Subject != "" || c.Body != "" || c.HTML {
			return invalid("content for %s is {\"text\"}; subject, body and html apply to email only", ch)
		}
		if strings.TrimSpace(c.Text) == "" {
			return invalid("content.text is required for %s", ch)
		}
		return parseText("text", c.Text)
	}
	if c.Text != "" {
		return invalid("content for email is {\"subject\",\"body\",\"html\"}; text does not apply")
	}
	if strings.TrimSpace(c.Subject) == "" {
		return invalid("content.subject is required for email")
	}
	if strings.TrimSpace(c.Body) == "" {
		return invalid("content.body is required for email")
	}
	if err := parseText("subject", c.Subject); err != nil {
		return err
	}
	if !c.HTML {
		return parseText("body", c.Body)
	}
	if _, err := htmltemplate.New("body").Option("missingkey=error").Parse(c.Body); err != nil {
		return invalid("content.body: %v", err)
	}
	return nil
}

// validateTimeZone accepts IANA names only; "Local" would mean whatever
// zone the server happens to run in.
func validateTimeZone(tz string) error {
	if tz == "" || tz == "Local" {
		return invalid("timezone must be an IANA zone name such as Asia/Shanghai")
	}
	if _, err := time.LoadLocation(tz); err != nil {
		return invalid("timezone %q is not a known IANA zone", tz)
	}
	return nil
}
