package sandbox

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	basicdatav1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/basicdata/v1"
)

// basicDataServer serves stations, routes and sort plans.
type basicDataServer struct {
	basicdatav1.UnimplementedBasicDataServiceServer
	s *Service
}

var stationKinds = map[string]basicdatav1.StationKind{
	KindFirstMile:  basicdatav1.StationKind_STATION_KIND_FIRST_MILE,
	KindSortCentre: basicdatav1.StationKind_STATION_KIND_SORT_CENTRE,
	KindLastMile:   basicdatav1.StationKind_STATION_KIND_LAST_MILE,
}

func kindName(k basicdatav1.StationKind) string {
	for name, v := range stationKinds {
		if v == k {
			return name
		}
	}
	return ""
}

func stationPB(st Station, updated time.Time) *basicdatav1.Station {
	return &basicdatav1.Station{
		Code: st.Code, Name: st.Name, Kind: stationKinds[st.Kind], Market: st.Market, City: st.City,
		TimeZone: st.TimeZone, Active: st.Active, ExceptionChute: st.ExceptionChute,
		UpdateTime: timestamppb.New(updated),
	}
}

func (b *basicDataServer) GetStation(ctx context.Context, req *basicdatav1.GetStationRequest) (*basicdatav1.GetStationResponse, error) {
	if err := b.s.inj.apply(ctx, SvcBasicData); err != nil {
		return nil, err
	}
	st, at, err := b.s.store.station(ctx, req.GetCode())
	if err != nil {
		return nil, grpcErr(err)
	}
	return &basicdatav1.GetStationResponse{Station: stationPB(st, at)}, nil
}

func (b *basicDataServer) ListStations(ctx context.Context, req *basicdatav1.ListStationsRequest) (*basicdatav1.ListStationsResponse, error) {
	if err := b.s.inj.apply(ctx, SvcBasicData); err != nil {
		return nil, err
	}
	if _, ok := basicdatav1.StationKind_name[int32(req.GetKind())]; !ok {
		return nil, status.Errorf(codes.InvalidArgument, "unknown station kind %d", req.GetKind())
	}
	rows, err := b.s.store.stations(ctx, req.GetMarket(), kindName(req.GetKind()))
	if err != nil {
		return nil, grpcErr(err)
	}
	resp := &basicdatav1.ListStationsResponse{}
	for _, r := range rows {
		resp.Stations = append(resp.Stations, stationPB(r.Station, r.UpdatedAt))
	}
	return resp, nil
}

func (b *basicDataServer) GetRoute(ctx context.Context, req *basicdatav1.GetRouteRequest) (*basicdatav1.GetRouteResponse, error) {
	if err := b.s.inj.apply(ctx, SvcBasicData); err != nil {
		return nil, err
	}
	p, ok := b.s.net.route(req.GetOriginStation(), req.GetDestinationStation())
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no route from %q to %q", req.GetOriginStation(), req.GetDestinationStation())
	}
	return &basicdatav1.GetRouteResponse{Route: &basicdatav1.Route{
		OriginStation: req.GetOriginStation(), DestinationStation: req.GetDestinationStation(), StationCodes: p,
	}}, nil
}

func (b *basicDataServer) GetSortPlan(ctx context.Context, req *basicdatav1.GetSortPlanRequest) (*basicdatav1.GetSortPlanResponse, error) {
	if err := b.s.inj.apply(ctx, SvcBasicData); err != nil {
		return nil, err
	}
	if req.GetVersion() < 0 {
		return nil, invalid("version must not be negative")
	}
	p, err := b.s.store.sortPlan(ctx, req.GetStation(), req.GetVersion())
	if err != nil {
		return nil, grpcErr(err)
	}
	out := &basicdatav1.SortPlan{
		Station: p.Station, Version: p.Version, ExceptionChute: p.ExceptionChute,
		PublishTime: timestamppb.New(p.PublishedAt),
	}
	for _, r := range p.Rules {
		out.Rules = append(out.Rules, &basicdatav1.SortRule{
			Priority: int32(r.Priority), WaybillType: r.WaybillType, Service: r.Service,
			DestinationStation: r.DestinationStation, NextHop: r.NextHop, Chute: r.Chute,
		})
	}
	return &basicdatav1.GetSortPlanResponse{SortPlan: out}, nil
}

var basicChangeKinds = map[string]basicdatav1.ChangeKind{
	changeStation:       basicdatav1.ChangeKind_CHANGE_KIND_STATION_UPDATED,
	changeSortPublished: basicdatav1.ChangeKind_CHANGE_KIND_SORT_PLAN_PUBLISHED,
}

func (b *basicDataServer) WatchChanges(req *basicdatav1.WatchChangesRequest, stream basicdatav1.BasicDataService_WatchChangesServer) error {
	ctx := stream.Context()
	if err := b.s.inj.apply(ctx, SvcBasicData); err != nil {
		return err
	}
	err := b.s.watch(ctx, req.GetSinceRevision(), func(ctx context.Context, after int64) (int64, error) {
		for {
			page, err := b.s.store.basicChanges(ctx, after, watchPage)
			if err != nil {
				return after, err
			}
			for _, c := range page {
				if err := stream.Send(&basicdatav1.WatchChangesResponse{
					Revision: c.Revision, Kind: basicChangeKinds[c.Kind], Station: c.Key,
					SortPlanVersion: c.SortPlanVersion, ChangeTime: timestamppb.New(c.At),
				}); err != nil {
					return after, err
				}
				after = c.Revision
			}
			if len(page) < watchPage {
				return after, nil
			}
		}
	})
	if ctx.Err() != nil {
		return nil
	}
	return grpcErr(err)
}
