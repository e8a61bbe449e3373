package sandbox

import (
	"context"

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
	if w.BillingBlock != "" {
		return &billingv1.CheckResponse{Ok: false, ReasonCode: w.BillingBlock, Message: "billing blocks waybill " + w.WaybillNo}, nil
	}
	return &billingv1.CheckResponse{Ok: true}, nil
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
	return &deliveryv1.GetStatusResponse{
		WaybillNo: w.WaybillNo, Status: deliveryStatusPB[w.Status], Reason: w.StatusReason,
		UpdateTime: timestamppb.New(w.UpdatedAt),
	}, nil
}
