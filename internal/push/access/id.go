package access

import (
	"crypto/rand"
	"sync"
	"time"
)

// crockford is the ULID alphabet: sortable as ASCII, no I, L, O or U.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// idGen makes ULIDs (48-bit millisecond time + 80 random bits, 26 chars),
// monotonic within one generator: ids made in the same millisecond increment
// the random part, so they sort in creation order and never collide here.
type idGen struct {
	now func() time.Time

	mu     sync.Mutex
	lastMs uint64
	hi     uint16 // top 16 of the 80 random bits
	lo     uint64 // low 64 of the 80 random bits
}

func newIDGen(now func() time.Time) *idGen { return &idGen{now: now} }

// next returns n fresh ids.
func (g *idGen) next(n int) []string {
	out := make([]string, n)
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := range out {
		ms := uint64(g.now().UnixMilli())
		if ms > g.lastMs {
			var b [10]byte
			_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
			g.lastMs = ms
			g.hi = uint16(b[0])<<8 | uint16(b[1])
			g.lo = 0
			for _, x := range b[2:] {
				g.lo = g.lo<<8 | uint64(x)
			}
		} else {
			// Same millisecond (or a clock step back): keep the last time and
			// increment, carrying into the top bits.
			g.lo++
			if g.lo == 0 {
				g.hi++
			}
		}
		out[i] = encodeULID(g.lastMs, g.hi, g.lo)
	}
	return out
}

func encodeULID(ms uint64, hi uint16, lo uint64) string {
	var b [16]byte
	for i := range 6 {
		b[i] = byte(ms >> (40 - 8*i))
	}
	b[6], b[7] = byte(hi>>8), byte(hi)
	for i := range 8 {
		b[8+i] = byte(lo >> (56 - 8*i))
	}
	// 128 bits → 26 base-32 digits, the first holding the top 3 bits.
	var out [26]byte
	var acc uint32
	bits := 2 // 26*5 = 130: two leading zero bits pad the front
	j := 0
	for _, x := range b {
		acc = acc<<8 | uint32(x)
		bits += 8
		for bits >= 5 {
			bits -= 5
			out[j] = crockford[(acc>>bits)&31]
			j++
		}
	}
	return string(out[:])
}
