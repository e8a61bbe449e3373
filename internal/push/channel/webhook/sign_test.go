package webhook

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSignNowMatchesSign(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	s := &Sender{now: func() time.Time { return now }, signers: newSignerPool("whsec_x")}
	for _, body := range []string{"", "{}", `{"text":"héllo"}`} {
		for range 3 { // pooled signers are reset between uses
			ts, sig := s.signNow([]byte(body))
			require.Equal(t, strconv.FormatInt(now.Unix(), 10), ts)
			require.Equal(t, sign("whsec_x", ts, []byte(body)), sig)
		}
	}
}

func TestSignNowConcurrent(t *testing.T) {
	s := &Sender{now: time.Now, signers: newSignerPool("k")}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				body := []byte(strconv.Itoa(g*1000 + i))
				ts, sig := s.signNow(body)
				if sig != sign("k", ts, body) {
					t.Errorf("signature of %s differs", body)
					return
				}
			}
		})
	}
	wg.Wait()
}
