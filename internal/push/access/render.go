package access

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	htemplate "html/template"
	"regexp"
	"strings"
	"sync/atomic"
	ttemplate "text/template"
	"time"

	"github.com/waypost/waypost/internal/push"
)

// Compiled is a template parsed once per version, with its time zone.
type Compiled struct {
	Template push.Template
	// Loc is the template's zone; the businessId date is taken in it.
	Loc *time.Location

	subject *ttemplate.Template
	text    *ttemplate.Template
	html    *htemplate.Template

	// day caches the businessId of the day last asked for.
	day atomic.Pointer[businessDay]
}

type businessDay struct {
	year, yday int
	id         string
}

// BusinessID is push.BusinessID of the template at now, formatted once a day.
func (c *Compiled) BusinessID(now time.Time) string {
	local := now.In(c.Loc)
	y, d := local.Year(), local.YearDay()
	if bd := c.day.Load(); bd != nil && bd.year == y && bd.yday == d {
		return bd.id
	}
	id := push.BusinessID(c.Template.Kind, c.Template.ID, now, c.Loc)
	c.day.Store(&businessDay{year: y, yday: d, id: id})
	return id
}

// Rendered is a message's content for its channel.
type Rendered struct {
	Subject string
	Text    string
	HTML    string
}

// errTemplateInvalid marks a stored template that cannot be parsed or whose
// zone is unknown: the caller cannot fix it, so it is a server-side error.
var errTemplateInvalid = errors.New("template invalid")

// MissingVariableError reports a variable the template uses that the message
// did not supply.
type MissingVariableError struct{ Name string }

func (e *MissingVariableError) Error() string { return "missing variable " + e.Name }

// Compile parses tpl's content for its channel: email uses Subject and Body
// (html/template when HTML is set, so variables are escaped), every other
// channel uses Text.
func Compile(tpl push.Template) (*Compiled, error) {
	c := &Compiled{Template: tpl, Loc: time.UTC}
	if tpl.TimeZone != "" {
		loc, err := time.LoadLocation(tpl.TimeZone)
		if err != nil {
			return nil, fmt.Errorf("template %d zone %q: %w: %w", tpl.ID, tpl.TimeZone, errTemplateInvalid, err)
		}
		c.Loc = loc
	}
	var err error
	parseText := func(name, src string) *ttemplate.Template {
		if err != nil {
			return nil
		}
		var t *ttemplate.Template
		t, err = ttemplate.New(name).Option("missingkey=error").Parse(src)
		return t
	}
	if tpl.Channel == push.ChannelEmail {
		c.subject = parseText("subject", tpl.Content.Subject)
		if tpl.Content.HTML {
			if err == nil {
				c.html, err = htemplate.New("body").Option("missingkey=error").Parse(tpl.Content.Body)
			}
		} else {
			c.text = parseText("body", tpl.Content.Body)
		}
	} else {
		c.text = parseText("text", tpl.Content.Text)
	}
	if err != nil {
		return nil, fmt.Errorf("template %d: %w: %w", tpl.ID, errTemplateInvalid, err)
	}
	return c, nil
}

// Render executes the template with vars. A variable the template needs but
// vars lacks is a *MissingVariableError naming it.
func (c *Compiled) Render(vars map[string]any) (Rendered, error) {
	if vars == nil {
		vars = map[string]any{}
	}
	var r Rendered
	var buf bytes.Buffer
	if c.subject != nil {
		if err := c.subject.Execute(&buf, vars); err != nil {
			return Rendered{}, renderErr(err)
		}
		r.Subject = buf.String()
		buf.Reset()
	}
	if c.text != nil {
		if err := c.text.Execute(&buf, vars); err != nil {
			return Rendered{}, renderErr(err)
		}
		r.Text = buf.String()
	}
	if c.html != nil {
		if err := c.html.Execute(&buf, vars); err != nil {
			return Rendered{}, renderErr(err)
		}
		r.HTML = buf.String()
		// Mail clients that do not show HTML read the text part.
		r.Text = plainText(r.HTML)
	}
	return r, nil
}

var missingKeyRE = regexp.MustCompile(`(?:map has no entry for key|no entry for key) "([^"]*)"`)

// renderErr turns text/template's "map has no entry for key" into a
// MissingVariableError; the template packages export no typed error for it.
func renderErr(err error) error {
	if m := missingKeyRE.FindStringSubmatch(err.Error()); m != nil {
		return &MissingVariableError{Name: m[1]}
	}
	return fmt.Errorf("render: %w", err)
}

var (
	tagRE   = regexp.MustCompile(`(?s)<[^>]*>`)
	blankRE = regexp.MustCompile(`\n{3,}`)
)

// plainText is a crude text alternative of an HTML body: tags removed,
// entities decoded, runs of blank lines collapsed.
func plainText(h string) string {
	s := strings.NewReplacer("<br>", "\n", "<br/>", "\n", "<br />", "\n", "</p>", "\n\n").Replace(h)
	s = html.UnescapeString(tagRE.ReplaceAllString(s, ""))
	return strings.TrimSpace(blankRE.ReplaceAllString(s, "\n\n"))
}
