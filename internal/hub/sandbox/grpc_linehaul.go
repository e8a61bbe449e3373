package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	linehaulv1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/linehaul/v1"
)

// linehaulServer serves the trip schedule and pre-alerts.
type linehaulServer struct {
	linehaulv1.UnimplementedLinehaulServiceServer
	s *Service
}

func (l *linehaulServer) tripPB(t trip) *linehaulv1.Trip {
	now := l.s.inj.now()
	st := linehaulv1.TripStatus_TRIP_STATUS_SCHEDULED
	switch {
	case !now.Before(t.Arrival):
		st = linehaulv1.TripStatus_TRIP_STATUS_ARRIVED
	case !now.Before(t.Departure):
		st = linehaulv1.TripStatus_TRIP_STATUS_DEPARTED
	}
	return &linehaulv1.Trip{
		TripId: t.ID, OriginStation: t.Origin, DestinationStation: t.Destination, VehiclePlate: t.Plate,
		DepartureTime: timestamppb.New(t.Departure), ArrivalTime: timestamppb.New(t.Arrival), Status: st,
	}
}

func (l *linehaulServer) ListTrips(ctx context.Context, req *linehaulv1.ListTripsRequest) (*linehaulv1.ListTripsResponse, error) {
	if err := l.s.inj.apply(ctx, SvcLinehaul); err != nil {
		return nil, err
	}
	start := l.s.inj.now().UTC().Truncate(24 * time.Hour)
	after, before := start, start.Add(48*time.Hour)
	if req.GetDepartureAfter() != nil {
		after = req.GetDepartureAfter().AsTime()
	}
	if req.GetDepartureBefore() != nil {
		before = req.GetDepartureBefore().AsTime()
	} else if req.GetDepartureAfter() != nil {
		before = after.Add(48 * time.Hour)
	}
	if !before.After(after) || before.Sub(after) > maxTripWindow {
		return nil, status.Errorf(codes.InvalidArgument, "departure window must be non-empty and at most %s", maxTripWindow)
	}
	resp := &linehaulv1.ListTripsResponse{}
	for _, t := range l.s.net.trips(req.GetOriginStation(), req.GetDestinationStation(), after, before) {
		resp.Trips = append(resp.Trips, l.tripPB(t))
	}
	return resp, nil
}

func (l *linehaulServer) GetTrip(ctx context.Context, req *linehaulv1.GetTripRequest) (*linehaulv1.GetTripResponse, error) {
	if err := l.s.inj.apply(ctx, SvcLinehaul); err != nil {
		return nil, err
	}
	t, ok := l.s.net.parseTripID(req.GetTripId())
	if !ok {
		return nil, status.Errorf(codes.NotFound, "unknown trip %q", req.GetTripId())
	}
	out := l.tripPB(t)
	alerts, err := l.s.store.preAlerts(ctx, "trip_id", t.ID)
	if err != nil {
		return nil, grpcErr(err)
	}
	for _, p := range alerts {
		out.PreAlerts = append(out.PreAlerts, preAlertPB(p))
	}
	return &linehaulv1.GetTripResponse{Trip: out}, nil
}

var containerKinds = map[linehaulv1.ContainerKind]string{
	linehaulv1.ContainerKind_CONTAINER_KIND_BAG:  "bag",
	linehaulv1.ContainerKind_CONTAINER_KIND_CAGE: "cage",
}

func preAlertPB(p preAlertRow) *linehaulv1.PreAlert {
	out := &linehaulv1.PreAlert{
		PreAlertId: p.ID, TripId: p.TripID, OriginStation: p.Origin, DestinationStation: p.Destination,
		SealNumber: p.Seal, CreateTime: timestamppb.New(p.CreatedAt),
	}
	for _, c := range p.Containers {
		kind := linehaulv1.ContainerKind_CONTAINER_KIND_UNSPECIFIED
		for k, name := range containerKinds {
			if name == c.Kind {
				kind = k
			}
		}
		out.Containers = append(out.Containers, &linehaulv1.Container{
			ContainerId: c.ID, Kind: kind, DestinationStation: c.Destination, SealNumber: c.Seal,
			WeightGrams: c.WeightGrams, WaybillNos: c.Waybills, ChildContainerIds: c.Children,
		})
	}
	return out
}

func (l *linehaulServer) CreatePreAlert(ctx context.Context, req *linehaulv1.CreatePreAlertRequest) (*linehaulv1.CreatePreAlertResponse, error) {
	if err := l.s.inj.apply(ctx, SvcLinehaul); err != nil {
		return nil, err
	}
	if req.GetRequestId() == "" || len(req.GetRequestId()) > maxTextLen {
		return nil, status.Errorf(codes.InvalidArgument, "request_id must be 1..%d characters", maxTextLen)
	}
	t, ok := l.s.net.parseTripID(req.GetTripId())
	if !ok {
		return nil, status.Errorf(codes.NotFound, "unknown trip %q", req.GetTripId())
	}
	if req.GetOriginStation() != t.Origin {
		return nil, status.Errorf(codes.FailedPrecondition, "trip %s leaves from %s, not %q", t.ID, t.Origin, req.GetOriginStation())
	}
	if len(req.GetContainers()) == 0 {
		return nil, invalid("a pre-alert lists at least one container")
	}
	if len(req.GetSealNumber()) > 64 {
		return nil, invalid("seal_number is longer than 64 characters")
	}
	row := preAlertRow{
		RequestID: req.GetRequestId(), TripID: t.ID, Origin: t.Origin, Destination: t.Destination,
		Seal: req.GetSealNumber(),
	}
	for i, c := range req.GetContainers() {
		kind, ok := containerKinds[c.GetKind()]
		if c.GetContainerId() == "" || !ok {
			return nil, status.Errorf(codes.InvalidArgument, "container %d: container_id and a bag or cage kind are required", i)
		}
		row.Containers = append(row.Containers, containerJSON{
			ID: c.GetContainerId(), Kind: kind, Destination: c.GetDestinationStation(), Seal: c.GetSealNumber(),
			WeightGrams: c.GetWeightGrams(), Waybills: c.GetWaybillNos(), Children: c.GetChildContainerIds(),
		})
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, status.Errorf(codes.Internal, "draw pre-alert id: %v", err)
	}
	row.ID = "PA-" + hex.EncodeToString(b[:])
	got, err := l.s.store.createPreAlert(ctx, row)
	if err != nil {
		return nil, grpcErr(err)
	}
	return &linehaulv1.CreatePreAlertResponse{PreAlert: preAlertPB(got)}, nil
}
