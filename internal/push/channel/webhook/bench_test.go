package webhook_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/waypost/waypost/internal/push/channel/webhook"
)

// BenchmarkVerify measures what a receiver pays per request to check the
// signature of a typical body.
func BenchmarkVerify(b *testing.B) {
	body := []byte(`{"messageId":"m-1","businessId":"2000000120260304","templateId":1,"receiver":"user-7","text":"Your parcel arrived","sentAt":"2026-03-04T05:06:07Z"}`)
	ts := strconv.FormatInt(fixedNow.Unix(), 10)
	h := http.Header{}
	h.Set("X-Waypost-Timestamp", ts)
	h.Set("X-Waypost-Signature", "v1=cd2a2c9c0f2b2a3e7c0d0b4d59b8d8d0a4e5f0c1a9b8e7d6c5b4a39281706f5e")
	b.ReportAllocs()
	for b.Loop() {
		_ = webhook.Verify(secret, h, body, fixedNow, time.Minute)
	}
}
