package downstream

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/waypost/waypost/internal/hub"
	basicdatav1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/basicdata/v1"
)

// Station returns a station, reusing a lookup younger than StationTTL.
func (g *GRPC) Station(ctx context.Context, code string) (hub.Station, error) {
	return g.stations.get(ctx, code)
}

// Route returns the stations a parcel passes from origin to destination.
// Routes are basic data like stations and are reused for StationTTL: every
// scan asks for one, and a network's roads change far less often than that.
func (g *GRPC) Route(ctx context.Context, origin, destination string) ([]string, error) {
	return g.routes.get(ctx, routeKey(origin, destination))
}

// SortPlan returns a station's current sort plan. While Watch is
// subscribed to basic data's changes the plan is reused for StationTTL or
// until a newer version is announced; otherwise every call asks, so that a
// published plan applies to the next sort.
func (g *GRPC) SortPlan(ctx context.Context, station string) (hub.SortPlan, error) {
	return g.plans.get(ctx, station)
}

// ForgetStation drops everything cached about a station — the station, the
// routes through it and its sort plan — for callers that learn it changed.
// A lookup of it in flight is not shared with later callers.
func (g *GRPC) ForgetStation(code string) {
	g.forgetStation(code)
	g.forgetRoutesThrough(code)
	g.plans.forget(code, nil)
}

func (g *GRPC) forgetStation(code string) { g.stations.forget(code, nil) }

// forgetRoutesThrough drops the routes that pass code, ends included.
func (g *GRPC) forgetRoutesThrough(code string) {
	g.routes.forgetMatching(func(r []string) bool { return slices.Contains(r, code) })
}

// forgetSortPlan drops station's plan when it is older than version (0:
// whatever it is), so a replayed announcement of the version already
// cached does not cost a call.
func (g *GRPC) forgetSortPlan(station string, version int64) {
	g.plans.forget(station, func(p hub.SortPlan) bool { return version == 0 || p.Version < version })
}

// clearCaches forgets every station, route and sort plan.
func (g *GRPC) clearCaches() {
	g.stations.clear()
	g.routes.clear()
	g.plans.clear()
}

// routeKey is unambiguous for any two codes, so two pairs never share a
// cache entry or a call: the origin's length, a colon, both codes.
func routeKey(origin, destination string) string {
	return strconv.Itoa(len(origin)) + ":" + origin + destination
}

// splitRouteKey undoes routeKey.
func splitRouteKey(key string) (origin, destination string) {
	n, rest, _ := strings.Cut(key, ":")
	i, err := strconv.Atoi(n)
	if err != nil || i < 0 || i > len(rest) {
		return "", "" // not a routeKey; basic data answers not found
	}
	return rest[:i], rest[i:]
}

func (g *GRPC) fetchStation(ctx context.Context, code string) (hub.Station, error) {
	resp, err := g.basicdata.GetStation(ctx, &basicdatav1.GetStationRequest{Code: code})
	if err != nil {
		return hub.Station{}, translate(ctx, "basic data", hub.CodeUnknownStation, err)
	}
	s := resp.GetStation()
	return hub.Station{
		Code: s.GetCode(), Name: s.GetName(), Kind: stationKind(s.GetKind()), Market: s.GetMarket(),
		TimeZone: s.GetTimeZone(), Active: s.GetActive(), ExceptionChute: s.GetExceptionChute(),
	}, nil
}

func stationKind(k basicdatav1.StationKind) string {
	switch k {
	case basicdatav1.StationKind_STATION_KIND_FIRST_MILE:
		return hub.StationFirstMile
	case basicdatav1.StationKind_STATION_KIND_SORT_CENTRE:
		return hub.StationSortCentre
	case basicdatav1.StationKind_STATION_KIND_LAST_MILE:
		return hub.StationLastMile
	}
	return ""
}

func (g *GRPC) fetchRoute(ctx context.Context, key string) ([]string, error) {
	origin, destination := splitRouteKey(key)
	resp, err := g.basicdata.GetRoute(ctx, &basicdatav1.GetRouteRequest{OriginStation: origin, DestinationStation: destination})
	if err != nil {
		return nil, translate(ctx, "basic data", hub.CodeWrongStation, err)
	}
	return slices.Clone(resp.GetRoute().GetStationCodes()), nil
}

func (g *GRPC) fetchSortPlan(ctx context.Context, station string) (hub.SortPlan, error) {
	resp, err := g.basicdata.GetSortPlan(ctx, &basicdatav1.GetSortPlanRequest{Station: station})
	if err != nil {
		return hub.SortPlan{}, translate(ctx, "basic data", hub.CodeUnknownStation, err)
	}
	p := resp.GetSortPlan()
	plan := hub.SortPlan{Station: p.GetStation(), Version: p.GetVersion(), ExceptionChute: p.GetExceptionChute()}
	for _, r := range p.GetRules() {
		plan.Rules = append(plan.Rules, hub.SortRule{
			Priority: r.GetPriority(), WaybillType: r.GetWaybillType(), Service: r.GetService(),
			Destination: r.GetDestinationStation(), NextHop: r.GetNextHop(), Chute: r.GetChute(),
		})
	}
	return plan, nil
}

// cloneSortPlan copies the rules, so a caller that reorders them does not
// change the cached plan.
func cloneSortPlan(p hub.SortPlan) hub.SortPlan {
	p.Rules = slices.Clone(p.Rules)
	return p
}
