package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultTolerance is the replay window Verify uses when given zero.
const DefaultTolerance = 5 * time.Minute

// Errors Verify wraps, so a receiver can answer 400 vs 401.
var (
	ErrMissingHeaders = errors.New("webhook: missing signature headers")
	ErrStale          = errors.New("webhook: timestamp outside tolerance")
	ErrBadSignature   = errors.New("webhook: signature mismatch")
)

// sign returns the X-Waypost-Signature value for timestamp ts and body.
func sign(secret, ts string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a received webhook: the timestamp header must lie within
// tolerance of now (either side, against replays and skewed clocks) and one
// v1 entry of the signature header must equal
// hex(HMAC-SHA256(secret, timestamp + "." + body)), compared in constant time.
// The signature header may list several comma-separated entries, which lets
// a secret be rotated. tolerance <= 0 means DefaultTolerance.
func Verify(secret string, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	return VerifyValues(secret, header.Get(HeaderTimestamp), header.Get(HeaderSignature), body, now, tolerance)
}

// VerifyValues is Verify given the values of the timestamp and signature
// headers, for a receiver that does not hold them in an http.Header.
func VerifyValues(secret, ts, sigs string, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if ts == "" || sigs == "" {
		return ErrMissingHeaders
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q: %w", ErrBadSignature, ts, err)
	}
	if d := now.Sub(time.Unix(secs, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp %d is %s from now", ErrStale, secs, d.Round(time.Second))
	}
	want, _ := hex.DecodeString(strings.TrimPrefix(sign(secret, ts, body), "v1="))
	for entry := range strings.SplitSeq(sigs, ",") {
		v, ok := strings.CutPrefix(strings.TrimSpace(entry), "v1=")
		if !ok {
			continue
		}
		got, err := hex.DecodeString(v)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrBadSignature
}
