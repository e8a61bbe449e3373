package downstream

import (
	"context"
	"testing"
	"time"
)

// benchParallelism multiplies GOMAXPROCS into the number of concurrent
// callers, as many request handlers would look up stations at once.
const benchParallelism = 8

// BenchmarkStationCached measures concurrent lookups of a station in the
// cache.
func BenchmarkStationCached(b *testing.B) {
	f := newFake()
	g, _ := startFake(b, f, Config{StationTTL: time.Hour})
	_, err := g.Station(context.Background(), "SGSC01")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := g.Station(ctx, "SGSC01"); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(f.count(mStation))/float64(b.N), "calls/op")
}

// BenchmarkStationUncached measures concurrent lookups of a station that is
// never cached (its TTL is 1 ns), through singleflight and, for comparison,
// straight to basic data as every miss did before; latency is added by the
// fake basic data to each call. calls/op is basic data calls per lookup.
func BenchmarkStationUncached(b *testing.B) {
	for _, latency := range []time.Duration{0, time.Millisecond} {
		for _, mode := range []string{"singleflight", "direct"} {
			b.Run(mode+"/latency="+latency.String(), func(b *testing.B) {
				f := newFake()
				f.delay = latency
				g, _ := startFake(b, f, Config{StationTTL: time.Nanosecond})
				lookup := func(ctx context.Context) error {
					_, err := g.Station(ctx, "SGSC01")
					return err
				}
				if mode == "direct" {
					lookup = func(ctx context.Context) error {
						cctx, cancel := g.call(ctx)
						defer cancel()
						_, err := g.fetchStation(cctx, "SGSC01")
						return err
					}
				}
				if err := lookup(context.Background()); err != nil {
					b.Fatal(err)
				}
				f.calls[mStation].Store(0)
				b.ReportAllocs()
				b.SetParallelism(benchParallelism)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					ctx := context.Background()
					for pb.Next() {
						if err := lookup(ctx); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.StopTimer()
				b.ReportMetric(float64(f.count(mStation))/float64(b.N), "calls/op")
			})
		}
	}
}
