package webhook

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/waypost/waypost/internal/push"
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
	dst = push.AppendJSONString(dst, p.MessageID)
	dst = append(dst, `,"businessId":`...)
	dst = push.AppendJSONString(dst, p.BusinessID)
	dst = append(dst, `,"templateId":`...)
	dst = strconv.AppendInt(dst, p.TemplateID, 10)
	dst = append(dst, `,"receiver":`...)
	dst = push.AppendJSONString(dst, p.Receiver)
	dst = append(dst, `,"text":`...)
	dst = push.AppendJSONString(dst, p.Text)
	dst = append(dst, `,"sentAt":"`...)
	dst = p.SentAt.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, `"}`...), nil
}

// payloadOverhead is the body's length beyond its four strings, unescaped:
// names and punctuation, the longest templateId and the longest sentAt.
const payloadOverhead = 80 + 20 + 35
