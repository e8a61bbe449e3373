package webhook

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendPayload appends p as encoding/json would marshal it, without its
// reflection and allocations: the body is built for every delivery. It
// falls back to json.Marshal for a time encoding/json refuses (year outside
// 0–9999), so such a payload fails exactly as before.
func appendPayload(dst []byte, p payload) ([]byte, error) {
	if y := p.SentAt.Year(); y < 0 || y > 9999 {
		b, err := json.Marshal(p)
		return append(dst, b...), err
	}
	dst = append(dst, `{"messageId":`...)
	dst = appendJSONString(dst, p.MessageID)
	dst = append(dst, `,"businessId":`...)
	dst = appendJSONString(dst, p.BusinessID)
	dst = append(dst, `,"templateId":`...)
	dst = strconv.AppendInt(dst, p.TemplateID, 10)
	dst = append(dst, `,"receiver":`...)
	dst = appendJSONString(dst, p.Receiver)
	dst = append(dst, `,"text":`...)
	dst = appendJSONString(dst, p.Text)
	dst = append(dst, `,"sentAt":"`...)
	dst = p.SentAt.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, `"}`...), nil
}

// payloadOverhead is the body's length beyond its four strings, unescaped:
// names and punctuation, the longest templateId and the longest sentAt.
const payloadOverhead = 80 + 20 + 35

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted as encoding/json does by default: HTML
// characters (<, >, &) escaped as \u00XX, control characters as short or
// \u00XX escapes, invalid UTF-8 replaced by \ufffd, and U+2028/U+2029
// escaped for JSONP. Tests hold it byte-equal to json.Marshal.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case c == '\u2028' || c == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
