package dedup

import (
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/waypost/waypost/internal/platform/kv"
	"github.com/waypost/waypost/internal/push"
)

// benchReceivers is the receiver population: large enough that the daily
// cap rarely refuses, so nearly every receiver runs both stages.
const benchReceivers = 1_000_000

// BenchmarkCheck measures Check with the default settings on notices, each
// message with its own content (so content dedup admits and the frequency cap
// runs too), from 64 goroutines. receivers/s counts receivers decided;
// admits/s counts the kv window admissions they took (two per receiver here,
// one per stage), comparable with BenchmarkBareAdmitBatch.
//
//	go test -run '^$' -bench BenchmarkCheck -count 5 ./internal/push/dedup
func BenchmarkCheck(b *testing.B) {
	names := make([]string, benchReceivers)
	for i := range names {
		names[i] = "user" + strconv.Itoa(i) + "@example.com"
	}
	for _, be := range backends() {
		for _, size := range []int{1, 50} {
			b.Run(be.name+"/batch="+strconv.Itoa(size), func(b *testing.B) {
				store := &countingKV{Store: be.new(b, nil)}
				var kvs kv.Store = store
				if _, ok := store.Store.(kv.InProcess); ok {
					kvs = inProcessKV{store} // as memkv is called unwrapped: no timeout
				}
				d, err := New(kvs, DefaultSettings(), nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				var seq atomic.Uint64
				var capped atomic.Int64
				b.SetParallelism(64 / max(1, runtime.GOMAXPROCS(0)))
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					req := Request{TemplateID: 1, Channel: push.ChannelEmail, MsgType: push.MsgNotice, Location: shanghai}
					for pb.Next() {
						n := seq.Add(1)
						req.MessageID = "bench-" + strconv.FormatUint(n, 36)
						req.Content = "Your parcel " + strconv.FormatUint(n, 10) + " is on its way"
						from := int(n*uint64(size)) % (benchReceivers - size)
						req.Receivers = names[from : from+size]
						v, err := d.Check(b.Context(), req)
						if err != nil {
							b.Error(err)
							return
						}
						for _, x := range v {
							if x != Admit {
								capped.Add(1)
							}
						}
					}
				})
				b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "receivers/s")
				b.ReportMetric(float64(store.admits.Load())/b.Elapsed().Seconds(), "admits/s")
				b.ReportMetric(float64(capped.Load())/float64(b.N*size), "refused/receiver")
			})
		}
	}
}

// BenchmarkBareAdmitBatch is the reference for BenchmarkCheck on the same
// machine and load: kv.AdmitBatch alone, from 64 goroutines, with as many
// window requests per call as one Check of 50 receivers makes in its two
// stages. admits/s counts window requests.
func BenchmarkBareAdmitBatch(b *testing.B) {
	for _, be := range backends() {
		b.Run(be.name+"/requests=100", func(b *testing.B) {
			store := be.new(b, nil)
			var seq atomic.Uint64
			b.SetParallelism(64 / max(1, runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				reqs := make([]kv.WindowRequest, 100)
				for pb.Next() {
					now := time.Now()
					for i := range reqs {
						n := seq.Add(1)
						reqs[i] = kv.WindowRequest{Key: "bench:" + strconv.FormatUint(n%benchReceivers, 36),
							Member: strconv.FormatUint(n, 36), Now: now, Window: 300 * time.Second, Limit: 5}
					}
					if _, err := store.AdmitBatch(b.Context(), reqs); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "admits/s")
		})
	}
}
