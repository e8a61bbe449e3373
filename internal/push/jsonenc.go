package push

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSONString appends s as a JSON string, byte for byte as
// encoding/json encodes it (HTML characters, U+2028 and U+2029 escaped,
// invalid UTF-8 replaced), for the hand-written encoders of the send path.
func AppendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// AppendJSONTime appends t as encoding/json encodes a time.Time.
func AppendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// AppendJSONStrings appends ss as a JSON array of strings (null when nil,
// as encoding/json does).
func AppendJSONStrings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendJSONString(b, s)
	}
	return append(b, ']')
}

// AppendJSON appends t as one JSON object, byte for byte what json.Marshal
// makes of it; the access layer encodes every task with it, and a test
// holds the two encoders equal.
func (t *Task) AppendJSON(b []byte) []byte {
	b = append(b, `{"messageId":`...)
	b = AppendJSONString(b, t.MessageID)
	b = append(b, `,"businessId":`...)
	b = AppendJSONString(b, t.BusinessID)
	b = append(b, `,"templateId":`...)
	b = strconv.AppendInt(b, t.TemplateID, 10)
	b = append(b, `,"templateVersion":`...)
	b = strconv.AppendInt(b, t.TemplateVersion, 10)
	b = append(b, `,"channel":`...)
	b = AppendJSONString(b, string(t.Channel))
	b = append(b, `,"msgType":`...)
	b = AppendJSONString(b, string(t.MsgType))
	if t.AccountID != "" {
		b = append(b, `,"accountId":`...)
		b = AppendJSONString(b, t.AccountID)
	}
	b = append(b, `,"quiet":`...)
	b = AppendJSONString(b, string(t.Quiet))
	b = append(b, `,"timezone":`...)
	b = AppendJSONString(b, t.TimeZone)
	b = append(b, `,"receivers":`...)
	b = AppendJSONStrings(b, t.Receivers)
	if t.Subject != "" {
		b = append(b, `,"subject":`...)
		b = AppendJSONString(b, t.Subject)
	}
	b = append(b, `,"text":`...)
	b = AppendJSONString(b, t.Text)
	if t.HTML != "" {
		b = append(b, `,"html":`...)
		b = AppendJSONString(b, t.HTML)
	}
	if t.BizID != "" {
		b = append(b, `,"bizId":`...)
		b = AppendJSONString(b, t.BizID)
	}
	b = append(b, `,"createdAt":`...)
	b = AppendJSONTime(b, t.CreatedAt)
	if t.Retry != 0 {
		b = append(b, `,"retry":`...)
		b = strconv.AppendInt(b, int64(t.Retry), 10)
	}
	return append(b, '}')
}
