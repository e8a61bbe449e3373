package sandbox

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	orderv1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/order/v1"
)

// maxBatch bounds BatchGetWaybills and AppendTrack requests.
const maxBatch = 500

// watchPage is how many changes a Watch stream reads per query.
const watchPage = 256

// grpcErr translates a store error into a gRPC status, once, at the edge.
func grpcErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrUnknownWaybill), errors.Is(err, ErrUnknownStation), errors.Is(err, ErrUnknownSortPlan):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	default:
		return status.Error(codes.Internal, err.Error())
	}
}

func invalid(msg string) error { return status.Error(codes.InvalidArgument, msg) }

// orderServer is the order centre.
type orderServer struct {
	orderv1.UnimplementedOrderServiceServer
	s *Service
}

func waybillPB(w *Waybill) *orderv1.Waybill {
	out := &orderv1.Waybill{
		WaybillNo: w.WaybillNo, Market: w.Market, OriginStation: w.OriginStation,
		DestinationStation: w.DestinationStation, WaybillType: w.Type, Service: w.Service,
		WeightGrams: w.WeightGrams, CodAmount: w.CODAmount, Currency: w.Currency,
		Receiver:   &orderv1.Receiver{Name: w.Receiver.Name, Phone: w.Receiver.Phone, Address: w.Receiver.Address},
		CreateTime: timestamppb.New(w.CreatedAt), UpdateTime: timestamppb.New(w.UpdatedAt),
	}
	for _, e := range w.Track {
		out.Track = append(out.Track, &orderv1.TrackEvent{
			EventId: e.EventID, WaybillNo: w.WaybillNo, EventCode: e.Code, Station: e.Station,
			EventTime: timestamppb.New(e.At), Operator: e.Operator, ReasonCode: e.Reason,
			Description: e.Description, Sequence: e.Sequence,
		})
	}
	return out
}

func (o *orderServer) GetWaybill(ctx context.Context, req *orderv1.GetWaybillRequest) (*orderv1.GetWaybillResponse, error) {
	if err := o.s.inj.apply(ctx, SvcOrder); err != nil {
		return nil, err
	}
	if req.GetWaybillNo() == "" {
		return nil, invalid("waybill_no is required")
	}
	w, err := o.s.store.waybill(ctx, req.GetWaybillNo(), req.GetIncludeTrack())
	if err != nil {
		return nil, grpcErr(err)
	}
	return &orderv1.GetWaybillResponse{Waybill: waybillPB(w)}, nil
}

func (o *orderServer) BatchGetWaybills(ctx context.Context, req *orderv1.BatchGetWaybillsRequest) (*orderv1.BatchGetWaybillsResponse, error) {
	if err := o.s.inj.apply(ctx, SvcOrder); err != nil {
		return nil, err
	}
	if len(req.GetWaybillNos()) > maxBatch {
		return nil, status.Errorf(codes.InvalidArgument, "at most %d waybill_nos per call", maxBatch)
	}
	found, err := o.s.store.waybills(ctx, req.GetWaybillNos(), req.GetIncludeTrack())
	if err != nil {
		return nil, grpcErr(err)
	}
	resp := &orderv1.BatchGetWaybillsResponse{}
	for _, no := range req.GetWaybillNos() {
		if w, ok := found[no]; ok {
			resp.Waybills = append(resp.Waybills, waybillPB(w))
		} else {
			resp.MissingWaybillNos = append(resp.MissingWaybillNos, no)
		}
	}
	return resp, nil
}

var waybillChangeKinds = map[string]orderv1.WaybillChangeKind{
	changeCreated: orderv1.WaybillChangeKind_WAYBILL_CHANGE_KIND_CREATED,
	changeStatus:  orderv1.WaybillChangeKind_WAYBILL_CHANGE_KIND_STATUS_CHANGED,
	changeTrack:   orderv1.WaybillChangeKind_WAYBILL_CHANGE_KIND_TRACK_APPENDED,
}

func (o *orderServer) WatchWaybillChanges(req *orderv1.WatchWaybillChangesRequest, stream orderv1.OrderService_WatchWaybillChangesServer) error {
	ctx := stream.Context()
	if err := o.s.inj.apply(ctx, SvcOrder); err != nil {
		return err
	}
	err := o.s.watch(ctx, req.GetSinceRevision(), func(ctx context.Context, after int64) (int64, error) {
		for {
			page, err := o.s.store.waybillChanges(ctx, after, watchPage)
			if err != nil {
				return after, err
			}
			for _, c := range page {
				msg := &orderv1.WatchWaybillChangesResponse{
					Revision: c.Revision, Kind: waybillChangeKinds[c.Kind], WaybillNo: c.Key,
					ChangeTime: timestamppb.New(c.At),
				}
				if w, err := o.s.store.waybill(ctx, c.Key, false); err == nil {
					msg.Waybill = waybillPB(w)
				}
				if err := stream.Send(msg); err != nil {
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

func (o *orderServer) AppendTrack(ctx context.Context, req *orderv1.AppendTrackRequest) (*orderv1.AppendTrackResponse, error) {
	if err := o.s.inj.apply(ctx, SvcOrder); err != nil {
		return nil, err
	}
	if n := len(req.GetEvents()); n == 0 || n > maxBatch {
		return nil, status.Errorf(codes.InvalidArgument, "want 1..%d events", maxBatch)
	}
	events := make([]TrackEvent, 0, len(req.GetEvents()))
	for i, e := range req.GetEvents() {
		switch {
		case e.GetEventId() == "" || len(e.GetEventId()) > maxTextLen:
			return nil, status.Errorf(codes.InvalidArgument, "event %d: event_id must be 1..%d characters", i, maxTextLen)
		case e.GetWaybillNo() == "":
			return nil, status.Errorf(codes.InvalidArgument, "event %d: waybill_no is required", i)
		case e.GetEventCode() == "" || len(e.GetEventCode()) > 32:
			return nil, status.Errorf(codes.InvalidArgument, "event %d: event_code must be 1..32 characters", i)
		case !e.GetEventTime().IsValid():
			return nil, status.Errorf(codes.InvalidArgument, "event %d: event_time is required", i)
		case len(e.GetStation()) > 32 || len(e.GetOperator()) > maxTextLen || len(e.GetReasonCode()) > maxTextLen:
			return nil, status.Errorf(codes.InvalidArgument, "event %d: station, operator or reason_code too long", i)
		}
		events = append(events, TrackEvent{
			EventID: e.GetEventId(), WaybillNo: e.GetWaybillNo(), Code: strings.ToUpper(e.GetEventCode()),
			Station: e.GetStation(), At: e.GetEventTime().AsTime(), Operator: e.GetOperator(),
			Reason: e.GetReasonCode(), Description: e.GetDescription(),
		})
	}
	appended, dups, err := o.s.store.appendTrack(ctx, events)
	if err != nil {
		return nil, grpcErr(err)
	}
	if appended > 0 {
		o.s.changed()
	}
	return &orderv1.AppendTrackResponse{Appended: int32(appended), Duplicates: int32(dups)}, nil
}
