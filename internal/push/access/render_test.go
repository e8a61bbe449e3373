package access_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/access"
)

func TestRender(t *testing.T) {
	textEmail := emailTemplate(1)
	textEmail.Content.HTML = false
	textEmail.Content.Body = "Dear {{.name}}, see <{{.url}}>"
	nested := smsTemplate(2)
	nested.Content.Text = "{{.user.name}} owes {{.amount}}"
	inbox := smsTemplate(3)
	inbox.Channel = push.ChannelInbox
	inbox.Content.Text = "{{if .vip}}VIP {{end}}{{.name}}"
	htmlOnlyBody := emailTemplate(6)
	htmlOnlyBody.Content.Subject = "Welcome"
	badCall := smsTemplate(4)
	badCall.Content.Text = "{{index .list 5}}"

	tests := []struct {
		name    string
		tpl     push.Template
		vars    map[string]any
		want    access.Rendered
		missing string
		fails   bool
	}{
		{name: "html email escapes", tpl: emailTemplate(1), vars: map[string]any{"name": `<script>"x"</script>`},
			want: access.Rendered{Subject: `Hi <script>"x"</script>`,
				HTML: "<p>Hello &lt;script&gt;&#34;x&#34;&lt;/script&gt;</p>", Text: `Hello <script>"x"</script>`}},
		{name: "text email is not escaped", tpl: textEmail, vars: map[string]any{"name": "A&B", "url": "https://x.io/?a=1&b=2"},
			want: access.Rendered{Subject: "Hi A&B", Text: "Dear A&B, see <https://x.io/?a=1&b=2>"}},
		{name: "sms", tpl: smsTemplate(5), vars: map[string]any{"code": "9876"}, want: access.Rendered{Text: "Your code is 9876"}},
		{name: "conditionals", tpl: inbox, vars: map[string]any{"vip": true, "name": "A"}, want: access.Rendered{Text: "VIP A"}},
		{name: "missing in subject", tpl: emailTemplate(1), vars: map[string]any{}, missing: "name"},
		{name: "missing in html body", tpl: htmlOnlyBody, vars: map[string]any{}, missing: "name"},
		{name: "nil variables", tpl: smsTemplate(5), vars: nil, missing: "code"},
		{name: "missing nested", tpl: nested, vars: map[string]any{"user": map[string]any{}, "amount": 1}, missing: "name"},
		{name: "missing top after nested", tpl: nested, vars: map[string]any{"user": map[string]any{"name": "A"}}, missing: "amount"},
		{name: "other execution error", tpl: badCall, vars: map[string]any{"list": []any{1}}, fails: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := access.Compile(tt.tpl)
			require.NoError(t, err)
			got, err := c.Render(tt.vars)
			switch {
			case tt.missing != "":
				mv, ok := errors.AsType[*access.MissingVariableError](err)
				require.True(t, ok, "%v", err)
				require.Equal(t, tt.missing, mv.Name)
			case tt.fails:
				require.Error(t, err)
				_, ok := errors.AsType[*access.MissingVariableError](err)
				require.False(t, ok)
			default:
				require.NoError(t, err)
				require.Equal(t, tt.want, got)
			}
		})
	}
}

func TestCompileRejects(t *testing.T) {
	badZone := smsTemplate(1)
	badZone.TimeZone = "Mars/Olympus"
	badSyntax := emailTemplate(2)
	badSyntax.Content.Subject = "{{.name"
	badHTML := emailTemplate(3)
	badHTML.Content.Body = "{{end}}"
	for _, tpl := range []push.Template{badZone, badSyntax, badHTML} {
		_, err := access.Compile(tpl)
		require.Error(t, err, tpl.ID)
	}
}
