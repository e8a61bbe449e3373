package sandbox

import (
	"fmt"
	"slices"
	"strings"
)

// Station kinds as the HTTP API spells them.
const (
	KindFirstMile  = "first_mile"
	KindSortCentre = "sort_centre"
	KindLastMile   = "last_mile"
)

// Station is a site of the seeded network.
type Station struct {
	Code           string
	Name           string
	Kind           string
	Market         string
	City           string
	TimeZone       string
	Active         bool
	ExceptionChute string
}

// link is a road between two stations; trips run both ways.
type link struct{ a, b string }

// seedStations is the seeded network: two markets, each with first-mile hubs
// feeding sort centres and sort centres feeding last-mile hubs. Codes are
// market + kind (FM, SC, LM) + number, as operators write them on cages.
var seedStations = []Station{
	{Code: "SGFM01", Name: "Jurong West First-Mile Hub", Kind: KindFirstMile, Market: "SG", City: "Singapore", TimeZone: "Asia/Singapore"},
	{Code: "SGFM02", Name: "Tampines First-Mile Hub", Kind: KindFirstMile, Market: "SG", City: "Singapore", TimeZone: "Asia/Singapore"},
	{Code: "SGFM03", Name: "Woodlands First-Mile Hub", Kind: KindFirstMile, Market: "SG", City: "Singapore", TimeZone: "Asia/Singapore"},
	{Code: "SGSC01", Name: "Tuas Sort Centre", Kind: KindSortCentre, Market: "SG", City: "Singapore", TimeZone: "Asia/Singapore"},
	{Code: "SGLM01", Name: "Ang Mo Kio Last-Mile Hub", Kind: KindLastMile, Market: "SG", City: "Singapore", TimeZone: "Asia/Singapore"},
	{Code: "SGLM02", Name: "Bedok Last-Mile Hub", Kind: KindLastMile, Market: "SG", City: "Singapore", TimeZone: "Asia/Singapore"},
	{Code: "SGLM03", Name: "Queenstown Last-Mile Hub", Kind: KindLastMile, Market: "SG", City: "Singapore", TimeZone: "Asia/Singapore"},
	{Code: "SGLM04", Name: "Punggol Last-Mile Hub", Kind: KindLastMile, Market: "SG", City: "Singapore", TimeZone: "Asia/Singapore"},
	{Code: "MYFM01", Name: "Shah Alam First-Mile Hub", Kind: KindFirstMile, Market: "MY", City: "Shah Alam", TimeZone: "Asia/Kuala_Lumpur"},
	{Code: "MYFM02", Name: "Johor Bahru First-Mile Hub", Kind: KindFirstMile, Market: "MY", City: "Johor Bahru", TimeZone: "Asia/Kuala_Lumpur"},
	{Code: "MYFM03", Name: "Butterworth First-Mile Hub", Kind: KindFirstMile, Market: "MY", City: "Butterworth", TimeZone: "Asia/Kuala_Lumpur"},
	{Code: "MYSC01", Name: "Klang Valley Sort Centre", Kind: KindSortCentre, Market: "MY", City: "Klang", TimeZone: "Asia/Kuala_Lumpur"},
	{Code: "MYSC02", Name: "Senai Sort Centre", Kind: KindSortCentre, Market: "MY", City: "Senai", TimeZone: "Asia/Kuala_Lumpur"},
	{Code: "MYSC03", Name: "Bayan Lepas Sort Centre", Kind: KindSortCentre, Market: "MY", City: "Bayan Lepas", TimeZone: "Asia/Kuala_Lumpur"},
	{Code: "MYLM01", Name: "Petaling Jaya Last-Mile Hub", Kind: KindLastMile, Market: "MY", City: "Petaling Jaya", TimeZone: "Asia/Kuala_Lumpur"},
	{Code: "MYLM02", Name: "Cheras Last-Mile Hub", Kind: KindLastMile, Market: "MY", City: "Kuala Lumpur", TimeZone: "Asia/Kuala_Lumpur"},
	{Code: "MYLM03", Name: "Skudai Last-Mile Hub", Kind: KindLastMile, Market: "MY", City: "Johor Bahru", TimeZone: "Asia/Kuala_Lumpur"},
	{Code: "MYLM04", Name: "George Town Last-Mile Hub", Kind: KindLastMile, Market: "MY", City: "George Town", TimeZone: "Asia/Kuala_Lumpur"},
	{Code: "MYLM05", Name: "Ipoh Last-Mile Hub", Kind: KindLastMile, Market: "MY", City: "Ipoh", TimeZone: "Asia/Kuala_Lumpur"},
	{Code: "MYLM06", Name: "Seremban Last-Mile Hub", Kind: KindLastMile, Market: "MY", City: "Seremban", TimeZone: "Asia/Kuala_Lumpur"},
}

// seedLinks connects the stations. First- and last-mile hubs hang off one
// sort centre each, so every route runs first mile → sort centre(s) → last
// mile; Tuas and Senai are the cross-border gateway between the markets.
var seedLinks = []link{
	{"SGFM01", "SGSC01"}, {"SGFM02", "SGSC01"}, {"SGFM03", "SGSC01"},
	{"SGSC01", "SGLM01"}, {"SGSC01", "SGLM02"}, {"SGSC01", "SGLM03"}, {"SGSC01", "SGLM04"},
	{"MYFM01", "MYSC01"}, {"MYFM02", "MYSC02"}, {"MYFM03", "MYSC03"},
	{"MYSC01", "MYSC02"}, {"MYSC01", "MYSC03"},
	{"MYSC01", "MYLM01"}, {"MYSC01", "MYLM02"}, {"MYSC01", "MYLM06"},
	{"MYSC02", "MYLM03"}, {"MYSC03", "MYLM04"}, {"MYSC03", "MYLM05"},
	{"SGSC01", "MYSC02"},
}

// Seed sort plan chutes: one chute per next hop, a delivery chute for
// parcels that end here, bulky parcels on their own chutes at sort centres.
const (
	exceptionChute = "X01"
	deliveryChute  = "D01"
	// Rule priorities: bulky rules are checked before the standard ones.
	bulkyPriority    = 10
	standardPriority = 100
)

// network is the fixed topology: stations by code, neighbours, and every
// shortest route, computed once.
type network struct {
	stations   map[string]Station
	codes      []string
	neighbours map[string][]string
	routes     map[[2]string][]string
	currency   map[string]string
}

func newNetwork(stations []Station, links []link) (*network, error) {
	n := &network{
		stations:   make(map[string]Station, len(stations)),
		neighbours: make(map[string][]string),
		routes:     make(map[[2]string][]string),
		currency:   map[string]string{"SG": "SGD", "MY": "MYR"},
	}
	for _, st := range stations {
		if _, dup := n.stations[st.Code]; dup {
			return nil, fmt.Errorf("sandbox network: duplicate station %s", st.Code)
		}
		st.Active = true
		st.ExceptionChute = exceptionChute
		n.stations[st.Code] = st
		n.codes = append(n.codes, st.Code)
	}
	slices.Sort(n.codes)
	for _, l := range links {
		if _, ok := n.stations[l.a]; !ok {
			return nil, fmt.Errorf("sandbox network: link to unknown station %s", l.a)
		}
		if _, ok := n.stations[l.b]; !ok {
			return nil, fmt.Errorf("sandbox network: link to unknown station %s", l.b)
		}
		n.neighbours[l.a] = append(n.neighbours[l.a], l.b)
		n.neighbours[l.b] = append(n.neighbours[l.b], l.a)
	}
	for _, nb := range n.neighbours {
		slices.Sort(nb) // deterministic tie-breaks between equal-length routes
	}
	for _, from := range n.codes {
		for to, path := range n.shortestPaths(from) {
			n.routes[[2]string{from, to}] = path
		}
	}
	return n, nil
}

// shortestPaths runs a breadth-first search from origin. Only sort centres
// relay parcels: a first- or last-mile hub is never the middle of a route.
func (n *network) shortestPaths(origin string) map[string][]string {
	prev := map[string]string{origin: ""}
	queue := []string{origin}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur != origin && n.stations[cur].Kind != KindSortCentre {
			continue
		}
		for _, nb := range n.neighbours[cur] {
			if _, seen := prev[nb]; !seen {
				prev[nb] = cur
				queue = append(queue, nb)
			}
		}
	}
	out := make(map[string][]string, len(prev))
	for dest := range prev {
		var path []string
		for at := dest; at != ""; at = prev[at] {
			path = append(path, at)
		}
		slices.Reverse(path)
		out[dest] = path
	}
	return out
}

// route returns the ordered stations from origin to destination.
func (n *network) route(origin, destination string) ([]string, bool) {
	p, ok := n.routes[[2]string{origin, destination}]
	return p, ok
}

// linked reports whether a road joins a and b.
func (n *network) linked(a, b string) bool { return slices.Contains(n.neighbours[a], b) }

// seedSortPlan is version 1 of a station's sort plan: every last-mile
// destination goes to the next hop on its route, on the chute of that hop.
func (n *network) seedSortPlan(station string) []SortRule {
	hops := []string{}
	for _, dest := range n.codes {
		if n.stations[dest].Kind != KindLastMile || dest == station {
			continue
		}
		if p, ok := n.route(station, dest); ok && !slices.Contains(hops, p[1]) {
			hops = append(hops, p[1])
		}
	}
	slices.Sort(hops)
	chute := func(prefix, hop string) string {
		return fmt.Sprintf("%s%02d", prefix, slices.Index(hops, hop)+1)
	}
	isSortCentre := n.stations[station].Kind == KindSortCentre
	var rules []SortRule
	for _, dest := range n.codes {
		if n.stations[dest].Kind != KindLastMile {
			continue
		}
		if dest == station {
			rules = append(rules, SortRule{Priority: standardPriority, DestinationStation: dest, NextHop: station, Chute: deliveryChute})
			continue
		}
		p, ok := n.route(station, dest)
		if !ok {
			continue
		}
		if isSortCentre {
			rules = append(rules, SortRule{Priority: bulkyPriority, WaybillType: "bulky", DestinationStation: dest, NextHop: p[1], Chute: chute("B", p[1])})
		}
		rules = append(rules, SortRule{Priority: standardPriority, DestinationStation: dest, NextHop: p[1], Chute: chute("C", p[1])})
	}
	slices.SortStableFunc(rules, func(a, b SortRule) int { return a.Priority - b.Priority })
	return rules
}

// SortRule is one rule of a sort plan; empty match fields match anything.
type SortRule struct {
	Priority           int    `json:"priority"`
	WaybillType        string `json:"waybillType,omitempty"`
	Service            string `json:"service,omitempty"`
	DestinationStation string `json:"destinationStation,omitempty"`
	NextHop            string `json:"nextHop"`
	Chute              string `json:"chute"`
}

// validateRules checks rules a client publishes.
func (n *network) validateRules(rules []SortRule) error {
	for i, r := range rules {
		switch {
		case strings.TrimSpace(r.Chute) == "":
			return fmt.Errorf("rule %d: chute is required", i)
		case r.NextHop == "":
			return fmt.Errorf("rule %d: nextHop is required", i)
		}
		if _, ok := n.stations[r.NextHop]; !ok {
			return fmt.Errorf("rule %d: unknown nextHop %q", i, r.NextHop)
		}
		if r.DestinationStation != "" {
			if _, ok := n.stations[r.DestinationStation]; !ok {
				return fmt.Errorf("rule %d: unknown destinationStation %q", i, r.DestinationStation)
			}
		}
		if r.WaybillType != "" && !slices.Contains(waybillTypes, r.WaybillType) {
			return fmt.Errorf("rule %d: unknown waybillType %q", i, r.WaybillType)
		}
		if r.Service != "" && !slices.Contains(services, r.Service) {
			return fmt.Errorf("rule %d: unknown service %q", i, r.Service)
		}
	}
	return nil
}

// Waybill types and service levels the sandbox accepts.
var (
	waybillTypes = []string{"standard", "bulky", "document"}
	services     = []string{"standard", "express", "economy"}
)
