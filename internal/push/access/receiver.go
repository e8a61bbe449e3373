package access

import (
	"net/mail"
	"regexp"
	"strings"
	"unicode"

	"github.com/waypost/waypost/internal/push"
)

var (
	e164RE     = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	cnMobileRE = regexp.MustCompile(`^(?:\+86)?1[3-9][0-9]{9}$`)
	labelRE    = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
)

// maxReceiverLen bounds an id-type receiver; longer is a mistake, not an id.
const maxReceiverLen = 256

// CheckReceiver reports why r is not a valid receiver on ch, or "" when it
// is: email needs an RFC 5322 bare address with a dotted, well-formed domain;
// sms needs E.164 or a CN mobile (with or without +86); every other channel
// needs a non-blank id without control characters.
func CheckReceiver(ch push.Channel, r string) string {
	switch ch {
	case push.ChannelEmail:
		return checkEmail(r)
	case push.ChannelSMS:
		if e164RE.MatchString(r) || cnMobileRE.MatchString(r) {
			return ""
		}
		return "not an E.164 or CN mobile number"
	default:
		switch {
		case strings.TrimSpace(r) == "":
			return "empty receiver"
		case len(r) > maxReceiverLen:
			return "receiver longer than 256 bytes"
		case strings.IndexFunc(r, unicode.IsControl) >= 0:
			return "control character in receiver"
		}
		return ""
	}
}

func checkEmail(r string) string {
	if len(r) > 254 {
		return "email address longer than 254 bytes"
	}
	a, err := mail.ParseAddress(r)
	// A display name or comment ("A <a@x.io>") parses but is not a receiver.
	if err != nil || a.Address != r || a.Name != "" {
		return "not an email address"
	}
	at := strings.LastIndexByte(r, '@')
	domain := r[at+1:]
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return "email domain has no dot"
	}
	for _, l := range labels {
		if !labelRE.MatchString(l) {
			return "email domain is malformed"
		}
	}
	if tld := labels[len(labels)-1]; strings.Trim(tld, "0123456789") == "" {
		return "email domain is malformed"
	}
	return ""
}
