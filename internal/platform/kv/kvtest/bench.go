package kvtest

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/waypost/waypost/internal/platform/kv"
)

// Benchmark workload: benchKeys windows of benchWindow with limit benchLimit,
// every attempt a new member at the real time, as push's dedup and limits use
// them. Most attempts on a hot key are refused once it is full, which costs a
// backend the same pruning and counting as an admission.
const (
	benchKeys   = 10_000
	benchWindow = time.Second
	benchLimit  = 10
)

// benchKeyNames is built on first use so that importing the package costs nothing.
var benchKeyNames = sync.OnceValue(func() []string {
	keys := make([]string, benchKeys)
	for i := range keys {
		keys[i] = "bench:w:" + strconv.Itoa(i)
	}
	return keys
})

// benchReq builds the request for attempt seq (a number unique per attempt).
func benchReq(seq uint64, now time.Time) kv.WindowRequest {
	return kv.WindowRequest{
		Key:    benchKeyNames()[seq%benchKeys],
		Member: strconv.FormatUint(seq, 36),
		Now:    now,
		Window: benchWindow,
		Limit:  benchLimit,
	}
}

func reportAdmits(b *testing.B, n int) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "admits/s")
}

// BenchAdmitParallel measures Admit called from b.RunParallel goroutines and
// reports admits/s (attempts, admitted or not).
func BenchAdmitParallel(b *testing.B, s kv.Store) {
	ctx := b.Context()
	var worker atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		// Each goroutine numbers its attempts in its own range.
		seq := worker.Add(1) << 40
		for pb.Next() {
			seq++
			if _, err := s.Admit(ctx, benchReq(seq, time.Now())); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportAdmits(b, b.N)
}

// BenchAdmitSerial measures Admit called from one goroutine and reports
// admits/s; on a networked backend this is one round trip per admission.
func BenchAdmitSerial(b *testing.B, s kv.Store) {
	ctx := b.Context()
	var seq uint64
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		seq++
		n++
		if _, err := s.Admit(ctx, benchReq(seq, time.Now())); err != nil {
			b.Fatal(err)
		}
	}
	reportAdmits(b, n)
}

// BenchAdmitBatch measures AdmitBatch of size requests from one goroutine;
// one op is one batch, and admits/s counts requests.
func BenchAdmitBatch(b *testing.B, s kv.Store, size int) {
	ctx := b.Context()
	reqs := make([]kv.WindowRequest, size)
	var seq uint64
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		now := time.Now()
		for i := range reqs {
			seq++
			reqs[i] = benchReq(seq, now)
		}
		if _, err := s.AdmitBatch(ctx, reqs); err != nil {
			b.Fatal(err)
		}
		n += size
	}
	reportAdmits(b, n)
}

// BenchHashIncrOnce measures HashIncrOnce of size requests from one
// goroutine, each a new id on one of 20 hashes of 10 fields, as the trace
// aggregator counts a batch of anchors (a few busy template days); one op is
// one batch, and incrs/s counts requests.
func BenchHashIncrOnce(b *testing.B, s kv.Store, size int) {
	ctx := b.Context()
	reqs := make([]kv.OnceIncrement, size)
	var seq uint64
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for i := range reqs {
			seq++
			reqs[i] = kv.OnceIncrement{
				Key: benchKeyNames()[seq%20], Field: strconv.FormatUint(seq%10, 10), Delta: 1,
				TTL: time.Hour, ID: strconv.FormatUint(seq, 36), IDTTL: time.Hour,
			}
		}
		if _, err := s.HashIncrOnce(ctx, reqs); err != nil {
			b.Fatal(err)
		}
		n += size
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "incrs/s")
}

// BenchListPushBatch measures ListPushBatch of keys requests of one 200-byte
// value each, capped at 100 elements, spread over benchKeys lists; one op is
// one batch, and pushes/s counts values.
func BenchListPushBatch(b *testing.B, s kv.Store, keys int) {
	ctx := b.Context()
	reqs := make([]kv.ListPushRequest, keys)
	val := make([]byte, 200)
	var seq uint64
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for i := range reqs {
			seq++
			reqs[i] = kv.ListPushRequest{Key: benchKeyNames()[seq%benchKeys], MaxLen: 100, TTL: time.Hour, Vals: [][]byte{val}}
		}
		if err := s.ListPushBatch(ctx, reqs); err != nil {
			b.Fatal(err)
		}
		n += keys
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "pushes/s")
}

// BenchAdmitPairs measures AdmitPairs of size pairs from one goroutine, as
// push dedup uses it: each pair a fresh first window of limit 1 (content
// seen for the first time), then one of the benchmark's shared windows (a
// receiver's daily cap). One op is one batch; pairs/s counts pairs.
func BenchAdmitPairs(b *testing.B, s kv.Store, size int) {
	ctx := b.Context()
	reqs := make([]kv.PairRequest, size)
	var seq uint64
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		now := time.Now()
		for i := range reqs {
			seq++
			second := benchReq(seq, now)
			reqs[i] = kv.PairRequest{
				First:  kv.WindowRequest{Key: "bench:p:" + second.Member, Member: second.Member, Now: now, Window: benchWindow, Limit: 1},
				Second: second,
			}
		}
		if _, err := s.AdmitPairs(ctx, reqs); err != nil {
			b.Fatal(err)
		}
		n += size
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "pairs/s")
}
