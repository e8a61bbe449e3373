package kafkaq

import (
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Reserved record headers. Users may not publish names with this prefix, and
// deliveries carry none of them.
const (
	reservedPrefix = "waypost-"
	// hdrNotBefore keeps the publisher's NotBefore so the delivery reports it.
	hdrNotBefore = "waypost-not-before"
	// hdrDue is when a delayed record may reach its target (unix ns).
	hdrDue = "waypost-due"
	// hdrExit is when a record may leave its delay tier (unix ns); at most hdrDue.
	hdrExit = "waypost-exit"
	// hdrTarget is the Kafka topic a delayed record is forwarded to.
	hdrTarget = "waypost-target"
	// hdrID carries a nacked delivery's ID into its retry copy.
	hdrID = "waypost-id"
	// hdrAttempts counts deliveries made before the retry copy was written.
	hdrAttempts = "waypost-attempts"
)

func newRecord(topic, key string, value []byte, headers map[string]string) *kgo.Record {
	rec := &kgo.Record{Topic: topic, Value: value}
	if key != "" {
		rec.Key = []byte(key)
	}
	if len(headers) > 0 {
		rec.Headers = make([]kgo.RecordHeader, 0, len(headers)+2)
		for k, v := range headers {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
	}
	return rec
}

// setHeader replaces or adds a header.
func setHeader(rec *kgo.Record, key, value string) {
	for i := range rec.Headers {
		if rec.Headers[i].Key == key {
			rec.Headers[i].Value = []byte(value)
			return
		}
	}
	rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: key, Value: []byte(value)})
}

func setTimeHeader(rec *kgo.Record, key string, t time.Time) {
	setHeader(rec, key, strconv.FormatInt(t.UnixNano(), 10))
}

// dropHeaders removes the given headers.
func dropHeaders(rec *kgo.Record, keys ...string) {
	out := rec.Headers[:0]
	for _, h := range rec.Headers {
		keep := true
		for _, k := range keys {
			if h.Key == k {
				keep = false
				break
			}
		}
		if keep {
			out = append(out, h)
		}
	}
	rec.Headers = out
}

func header(rec *kgo.Record, key string) (string, bool) {
	for _, h := range rec.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

func timeHeader(rec *kgo.Record, key string) (time.Time, bool) {
	v, ok := header(rec, key)
	if !ok {
		return time.Time{}, false
	}
	ns, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

func intHeader(rec *kgo.Record, key string) int {
	v, _ := header(rec, key)
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// userHeaders returns the headers a publisher set, or nil when there are none.
func userHeaders(rec *kgo.Record) map[string]string {
	var out map[string]string
	for _, h := range rec.Headers {
		if strings.HasPrefix(strings.ToLower(h.Key), reservedPrefix) {
			continue
		}
		if out == nil {
			out = make(map[string]string, len(rec.Headers))
		}
		out[h.Key] = string(h.Value)
	}
	return out
}

// copyRecord returns a fresh record (for producing) with rec's key, value and
// headers on topic.
func copyRecord(rec *kgo.Record, topic string) *kgo.Record {
	out := &kgo.Record{Topic: topic, Key: rec.Key, Value: rec.Value}
	if len(rec.Headers) > 0 {
		out.Headers = append(make([]kgo.RecordHeader, 0, len(rec.Headers)+3), rec.Headers...)
	}
	return out
}
