package sandbox

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	billingv1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/billing/v1"
	deliveryv1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/delivery/v1"
)

// billingServer answers whether a parcel may move on.
type billingServer struct {
	billingv1.UnimplementedBillingServiceServer
	s *Service
}

func (b *billingServer) Check(ctx context.Context, req *billingv1.CheckRequest) (*billingv1.CheckResponse, error) {
	if err := b.s.inj.apply(ctx, SvcBilling); err != nil {
		return nil, err
	}
	if req.GetWaybillNo() == "" {
		return nil, invalid("waybill_no is required")
	}
	w, err := b.s.store.waybill(ctx, req.GetWaybillNo(), false)
	if err != nil {
		return nil, grpcErr(err)
	}
	return billingVerdict(w), nil
}

func billingVerdict(w *Waybill) *billingv1.CheckResponse {
	if w.BillingBlock != "" {
		return &billingv1.CheckResponse{Ok: false, ReasonCode: w.BillingBlock, Message: "billing blocks waybill " + w.WaybillNo}
	}
	return &billingv1.CheckResponse{Ok: true}
}

func (b *billingServer) BatchCheck(ctx context.Context, req *billingv1.BatchCheckRequest) (*billingv1.BatchCheckResponse, error) {
	if err := b.s.inj.apply(ctx, SvcBilling); err != nil {
		return nil, err
	}
	checks := req.GetChecks()
	nos, err := batchNos(len(checks), func(i int) string { return checks[i].GetWaybillNo() })
	if err != nil {
		return nil, err
	}
	found, err := b.s.store.waybills(ctx, nos, false)
	if err != nil {
		return nil, grpcErr(err)
	}
	resp := &billingv1.BatchCheckResponse{Results: make([]*billingv1.BatchCheckResult, len(nos))}
	for i, no := range nos {
		if w, ok := found[no]; ok {
			resp.Results[i] = &billingv1.BatchCheckResult{Verdict: billingVerdict(w)}
		} else {
			resp.Results[i] = &billingv1.BatchCheckResult{NotFound: true}
		}
	}
	return resp, nil
}

// batchNos collects the n waybill numbers of a batch request, refusing an
// empty one or more than maxBatch.
func batchNos(n int, no func(int) string) ([]string, error) {
	if n > maxBatch {
		return nil, status.Errorf(codes.InvalidArgument, "at most %d waybills per call", maxBatch)
	}
	nos := make([]string, n)
	for i := range n {
		if nos[i] = no(i); nos[i] == "" {
			return nil, invalid("waybill_no is required")
		}
	}
	return nos, nil
}

// deliveryServer reports delivery status.
type deliveryServer struct {
	deliveryv1.UnimplementedDeliveryServiceServer
	s *Service
}

var deliveryStatusPB = map[string]deliveryv1.DeliveryStatus{
	StatusCreated:        deliveryv1.DeliveryStatus_DELIVERY_STATUS_CREATED,
	StatusInTransit:      deliveryv1.DeliveryStatus_DELIVERY_STATUS_IN_TRANSIT,
	StatusOutForDelivery: deliveryv1.DeliveryStatus_DELIVERY_STATUS_OUT_FOR_DELIVERY,
	StatusDelivered:      deliveryv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED,
	StatusCancelled:      deliveryv1.DeliveryStatus_DELIVERY_STATUS_CANCELLED,
	StatusOnHold:         deliveryv1.DeliveryStatus_DELIVERY_STATUS_ON_HOLD,
}

func (d *deliveryServer) GetStatus(ctx context.Context, req *deliveryv1.GetStatusRequest) (*deliveryv1.GetStatusResponse, error) {
	if err := d.s.inj.apply(ctx, SvcDelivery); err != nil {
		return nil, err
	}
	if req.GetWaybillNo() == "" {
		return nil, invalid("waybill_no is required")
	}
	w, err := d.s.store.waybill(ctx, req.GetWaybillNo(), false)
	if err != nil {
		return nil, grpcErr(err)
	}
	return statusPB(w), nil
}

func statusPB(w *Waybill) *deliveryv1.GetStatusResponse {
	return &deliveryv1.GetStatusResponse{
		WaybillNo: w.WaybillNo, Status: deliveryStatusPB[w.Status], Reason: w.StatusReason,
		UpdateTime: timestamppb.New(w.UpdatedAt),
	}
}

func (d *deliveryServer) BatchGetStatus(ctx context.Context, req *deliveryv1.BatchGetStatusRequest) (*deliveryv1.BatchGetStatusResponse, error) {
	if err := d.s.inj.apply(ctx, SvcDelivery); err != nil {
		return nil, err
	}
	nos, err := batchNos(len(req.GetWaybillNos()), func(i int) string { return req.GetWaybillNos()[i] })
	if err != nil {
		return nil, err
	}
	found, err := d.s.store.waybills(ctx, nos, false)
	if err != nil {
		return nil, grpcErr(err)
	}
	resp := &deliveryv1.BatchGetStatusResponse{}
	for _, no := range nos {
		if w, ok := found[no]; ok {
			resp.Statuses = append(resp.Statuses, statusPB(w))
		} else {
			resp.MissingWaybillNos = append(resp.MissingWaybillNos, no)
		}
	}
	return resp, nil
}
