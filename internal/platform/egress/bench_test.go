package egress_test

import (
	"net/netip"
	"testing"

	"github.com/waypost/waypost/internal/platform/egress"
)

// BenchmarkCheck measures the per-connection cost of the guard's decision.
func BenchmarkCheck(b *testing.B) {
	g := egress.New([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	addr := netip.MustParseAddr("203.0.113.9")
	b.ReportAllocs()
	for b.Loop() {
		_ = g.Check(addr)
	}
}
