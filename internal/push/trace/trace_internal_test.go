package trace

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/push"
)

func TestDeduperKeepsFirstAcrossReuse(t *testing.T) {
	a := func(msg, ev, state string) push.Anchor { return push.Anchor{MessageID: msg, EventID: ev, State: state} }
	var d deduper
	for range 3 { // the map is reused: nothing of one call leaks into the next
		batch := []push.Anchor{a("m", "1", "first"), a("n", "1", "x"), a("m", "1", "again"), a("m", "2", "y"), a("n", "1", "again")}
		require.True(t, d.hasDuplicates(batch))
		require.Equal(t, []push.Anchor{a("m", "1", "first"), a("n", "1", "x"), a("m", "2", "y")}, d.dedupe(batch))
		require.False(t, d.hasDuplicates([]push.Anchor{a("m", "1", ""), a("m", "2", ""), a("n", "1", "")}))
		require.Empty(t, d.dedupe(nil))
	}
}
