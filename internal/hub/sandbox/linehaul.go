package sandbox

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"
)

// trip is one scheduled departure on a link.
type trip struct {
	ID          string
	Origin      string
	Destination string
	Plate       string
	Departure   time.Time
	Arrival     time.Time
}

// Transit times: within a market, and across the border.
const (
	domesticTransit = 3 * time.Hour
	borderTransit   = 8 * time.Hour
	// maxTripWindow bounds ListTrips so one call cannot ask for years.
	maxTripWindow = 7 * 24 * time.Hour
)

// departures lists the local departure times (HHMM) of trips from a to b:
// pick-ups leave first-mile hubs through the day, sort centres trunk at
// night and midday, last-mile hubs get two waves before delivery rounds, and
// empty cages go back in the evening.
func (n *network) departures(a, b string) []int {
	ka, kb := n.stations[a].Kind, n.stations[b].Kind
	switch {
	case ka == KindFirstMile:
		return []int{1000, 1600, 2200}
	case ka == KindSortCentre && kb == KindSortCentre:
		return []int{200, 1400}
	case ka == KindSortCentre && kb == KindLastMile:
		return []int{500, 1100}
	case ka == KindLastMile:
		return []int{2000}
	default: // sort centre back to a first-mile hub
		return []int{2100}
	}
}

// makeTrip builds the trip leaving a for b on local day (year, month, day)
// at hhmm, or false when no such link or departure exists.
func (n *network) makeTrip(a, b string, y int, m time.Month, d, hhmm int) (trip, bool) {
	if !n.linked(a, b) || !slices.Contains(n.departures(a, b), hhmm) {
		return trip{}, false
	}
	loc, err := time.LoadLocation(n.stations[a].TimeZone)
	if err != nil {
		loc = time.UTC
	}
	dep := time.Date(y, m, d, hhmm/100, hhmm%100, 0, 0, loc)
	transit := domesticTransit
	if n.stations[a].Market != n.stations[b].Market {
		transit = borderTransit
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(a + b))
	return trip{
		ID:          fmt.Sprintf("LH-%s-%s-%s-%04d", dep.Format("20060102"), a, b, hhmm),
		Origin:      a,
		Destination: b,
		Plate:       fmt.Sprintf("%s-TRK-%03d", n.stations[a].Market, h.Sum32()%1000),
		Departure:   dep.UTC(),
		Arrival:     dep.Add(transit).UTC(),
	}, true
}

// parseTripID reverses makeTrip's id.
func (n *network) parseTripID(id string) (trip, bool) {
	parts := strings.Split(id, "-")
	if len(parts) != 5 || parts[0] != "LH" {
		return trip{}, false
	}
	day, err := time.Parse("20060102", parts[1])
	if err != nil {
		return trip{}, false
	}
	var hhmm int
	if _, err := fmt.Sscanf(parts[4], "%04d", &hhmm); err != nil || len(parts[4]) != 4 {
		return trip{}, false
	}
	t, ok := n.makeTrip(parts[2], parts[3], day.Year(), day.Month(), day.Day(), hhmm)
	return t, ok && t.ID == id
}

// trips lists the trips departing in [after, before), filtered by origin
// and destination when given, ordered by departure then id.
func (n *network) trips(origin, destination string, after, before time.Time) []trip {
	var out []trip
	for _, a := range n.codes {
		if origin != "" && a != origin {
			continue
		}
		for _, b := range n.neighbours[a] {
			if destination != "" && b != destination {
				continue
			}
			// Local days can straddle UTC days: look one day either side.
			for day := after.AddDate(0, 0, -1); !day.After(before.AddDate(0, 0, 1)); day = day.AddDate(0, 0, 1) {
				for _, hhmm := range n.departures(a, b) {
					t, _ := n.makeTrip(a, b, day.Year(), day.Month(), day.Day(), hhmm)
					if !t.Departure.Before(after) && t.Departure.Before(before) && !slices.ContainsFunc(out, func(x trip) bool { return x.ID == t.ID }) {
						out = append(out, t)
					}
				}
			}
		}
	}
	slices.SortFunc(out, func(x, y trip) int {
		if c := x.Departure.Compare(y.Departure); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	return out
}
