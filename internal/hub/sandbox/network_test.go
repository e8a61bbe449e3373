package sandbox

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func testNetwork(t *testing.T) *network {
	t.Helper()
	n, err := newNetwork(seedStations, seedLinks)
	require.NoError(t, err)
	return n
}

func TestNetworkShape(t *testing.T) {
	n := testNetwork(t)
	require.Len(t, n.codes, 20)
	kinds := map[string]int{}
	markets := map[string]int{}
	for _, st := range n.stations {
		kinds[st.Kind]++
		markets[st.Market]++
	}
	require.Equal(t, map[string]int{KindFirstMile: 6, KindSortCentre: 4, KindLastMile: 10}, kinds)
	require.Len(t, markets, 2)
}

func TestRoutes(t *testing.T) {
	n := testNetwork(t)
	tests := []struct {
		from, to string
		want     []string
	}{
		{"SGFM01", "SGLM02", []string{"SGFM01", "SGSC01", "SGLM02"}},
		{"MYFM03", "MYLM03", []string{"MYFM03", "MYSC03", "MYSC01", "MYSC02", "MYLM03"}},
		{"SGFM02", "MYLM01", []string{"SGFM02", "SGSC01", "MYSC02", "MYSC01", "MYLM01"}},
		{"MYLM04", "MYLM04", []string{"MYLM04"}},
	}
	for _, tt := range tests {
		t.Run(tt.from+"_"+tt.to, func(t *testing.T) {
			got, ok := n.route(tt.from, tt.to)
			require.True(t, ok)
			require.Equal(t, tt.want, got)
		})
	}
	_, ok := n.route("SGFM01", "NOPE")
	require.False(t, ok)
	// Every first-mile hub reaches every last-mile hub through sort centres only.
	for _, a := range n.codes {
		for _, b := range n.codes {
			if n.stations[a].Kind != KindFirstMile || n.stations[b].Kind != KindLastMile {
				continue
			}
			p, ok := n.route(a, b)
			require.True(t, ok, "%s→%s", a, b)
			for _, mid := range p[1 : len(p)-1] {
				require.Equal(t, KindSortCentre, n.stations[mid].Kind)
			}
		}
	}
}

// match is the first rule of rules that takes the parcel.
func match(rules []SortRule, typ, service, dest string) (SortRule, bool) {
	for _, r := range rules {
		if (r.WaybillType == "" || r.WaybillType == typ) && (r.Service == "" || r.Service == service) &&
			(r.DestinationStation == "" || r.DestinationStation == dest) {
			return r, true
		}
	}
	return SortRule{}, false
}

func TestSeedSortPlansFollowRoutes(t *testing.T) {
	n := testNetwork(t)
	for _, station := range n.codes {
		rules := n.seedSortPlan(station)
		require.NoError(t, n.validateRules(rules))
		for _, dest := range n.codes {
			if n.stations[dest].Kind != KindLastMile {
				continue
			}
			p, _ := n.route(station, dest)
			for _, typ := range waybillTypes {
				r, ok := match(rules, typ, "standard", dest)
				require.True(t, ok, "%s has a rule for %s", station, dest)
				if dest == station {
					require.Equal(t, station, r.NextHop)
					require.Equal(t, deliveryChute, r.Chute)
					continue
				}
				require.Equal(t, p[1], r.NextHop, "%s → %s (%s)", station, dest, typ)
			}
		}
	}
	sc := n.seedSortPlan("SGSC01")
	bulky, _ := match(sc, "bulky", "standard", "MYLM01")
	std, _ := match(sc, "standard", "standard", "MYLM01")
	require.Equal(t, "MYSC02", bulky.NextHop)
	require.NotEqual(t, bulky.Chute, std.Chute, "bulky parcels have their own chutes at sort centres")
	_, ok := match(sc, "standard", "standard", "SGFM01")
	require.False(t, ok, "no rule for a first-mile destination: the exception chute takes it")
}

func TestTrips(t *testing.T) {
	n := testNetwork(t)
	after := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	trips := n.trips("SGFM01", "", after, after.Add(24*time.Hour))
	require.NotEmpty(t, trips)
	for i, tr := range trips {
		require.Equal(t, "SGFM01", tr.Origin)
		require.Equal(t, "SGSC01", tr.Destination)
		require.True(t, tr.Arrival.After(tr.Departure))
		if i > 0 {
			require.False(t, tr.Departure.Before(trips[i-1].Departure))
		}
		back, ok := n.parseTripID(tr.ID)
		require.True(t, ok, tr.ID)
		require.Equal(t, tr, back)
	}
	require.Equal(t, "LH-20261129-SGFM01-SGSC01-1000", trips[0].ID)
	for _, bad := range []string{"", "LH-20261129-SGFM01-SGLM01-1000", "LH-20261129-SGFM01-SGSC01-1001", "LH-2026-SGFM01-SGSC01-1000", "XX-20261129-SGFM01-SGSC01-1000"} {
		_, ok := n.parseTripID(bad)
		require.False(t, ok, bad)
	}
	border := n.trips("SGSC01", "MYSC02", after, after.Add(24*time.Hour))
	require.Len(t, border, 2)
	require.Equal(t, borderTransit, border[0].Arrival.Sub(border[0].Departure))
}
