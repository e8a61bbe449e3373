package hubapi

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/hub/ops"
	asmv1 "github.com/waypost/waypost/proto/gen/go/waypost/hub/asm/v1"
)

// sorter serves waypost.hub.asm.v1.SorterService: a live sort computed
// inside the machine's deadline, or the station's exception chute with a
// reason, never an error and never late.
type sorter struct {
	asmv1.UnimplementedSorterServiceServer
	api *API
	// chutes remembers each station's exception chute, so a timeout can be
	// answered without asking anyone.
	chutes sync.Map
}

type decision struct {
	res ops.SortResult
	err error
}

// budget is when the answer must be ready: the caller's deadline minus the
// margin (never more than a fifth of the time left), or the default budget
// when the caller set no deadline.
func (s *sorter) budget(ctx context.Context) time.Time {
	// Deadlines are on the real clock, whatever clock stamps work orders.
	cfg, now := s.api.cfg, time.Now()
	deadline, ok := ctx.Deadline()
	if !ok {
		return now.Add(cfg.SorterBudget)
	}
	margin := min(cfg.SorterMargin, deadline.Sub(now)/5)
	return deadline.Add(-margin)
}

func (s *sorter) exceptionChute(station string) string {
	if c, ok := s.chutes.Load(station); ok {
		return c.(string)
	}
	return s.api.cfg.ExceptionChute
}

// GetSortResult answers which chute a scanned parcel goes to.
func (s *sorter) GetSortResult(ctx context.Context, req *asmv1.GetSortResultRequest) (*asmv1.GetSortResultResponse, error) {
	resp := &asmv1.GetSortResultResponse{Barcode: req.GetBarcode()}
	if req.GetStation() == "" {
		return nil, status.Error(codes.InvalidArgument, "station is required")
	}
	if !hub.ValidBarcode(req.GetBarcode()) {
		return s.exception(resp, req.GetStation(), hub.CodeMalformedBarcode), nil
	}
	resp.WaybillNo = req.GetBarcode()
	until := s.budget(ctx)
	cctx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	done := make(chan decision, 1)
	go func() {
		if st, err := s.api.ops.Downstream().Station(cctx, req.GetStation()); err == nil && st.ExceptionChute != "" {
			s.chutes.Store(req.GetStation(), st.ExceptionChute)
		}
		res, err := s.api.flows.Decide(cctx, ops.Scan{Station: req.GetStation(), Waybill: req.GetBarcode()})
		done <- decision{res: res, err: err}
	}()
	timer := time.NewTimer(time.Until(until))
	defer timer.Stop()
	select {
	case d := <-done:
		return s.answer(resp, req.GetStation(), d), nil
	case <-timer.C:
		return s.exception(resp, req.GetStation(), hub.CodeTimeout), nil
	case <-ctx.Done():
		return s.exception(resp, req.GetStation(), hub.CodeTimeout), nil
	}
}

func (s *sorter) answer(resp *asmv1.GetSortResultResponse, station string, d decision) *asmv1.GetSortResultResponse {
	resp.SortPlanVersion = d.res.PlanVersion
	if d.err == nil {
		resp.Chute, resp.NextHop, resp.Source = d.res.Chute, d.res.NextHop, asmv1.ResultSource_RESULT_SOURCE_LIVE
		s.api.metrics.sorter.WithLabelValues("live", "").Inc()
		return resp
	}
	reason := "internal"
	if ref, ok := hub.AsRefusal(d.err); ok {
		reason = ref.Code
		if ref.Code == hub.CodeDownstreamTimeout {
			reason = hub.CodeTimeout
		}
	} else {
		s.api.log.Warn("hub: sorter decision failed", "station", station, "barcode", resp.GetBarcode(), "err", d.err)
	}
	if d.res.Chute != "" {
		s.chutes.Store(station, d.res.Chute)
	}
	return s.exception(resp, station, reason)
}

func (s *sorter) exception(resp *asmv1.GetSortResultResponse, station, reason string) *asmv1.GetSortResultResponse {
	resp.Chute, resp.NextHop = s.exceptionChute(station), ""
	resp.ReasonCode, resp.Source = reason, asmv1.ResultSource_RESULT_SOURCE_EXCEPTION
	s.api.metrics.sorter.WithLabelValues("exception", reason).Inc()
	return resp
}

var outcomes = map[asmv1.SortOutcome]string{
	asmv1.SortOutcome_SORT_OUTCOME_SORTED:       "sorted",
	asmv1.SortOutcome_SORT_OUTCOME_RECIRCULATED: "recirculated",
	asmv1.SortOutcome_SORT_OUTCOME_EXCEPTION:    "exception",
	asmv1.SortOutcome_SORT_OUTCOME_NO_READ:      "no_read",
}

// ReportSorted records where the machine put a parcel.
func (s *sorter) ReportSorted(ctx context.Context, req *asmv1.ReportSortedRequest) (*asmv1.ReportSortedResponse, error) {
	outcome, ok := outcomes[req.GetOutcome()]
	if !ok {
		return nil, status.Error(codes.InvalidArgument, "outcome is required")
	}
	res, err := s.api.ops.ReportSorted(ctx, ops.SortReport{Station: req.GetStation(), SorterID: req.GetSorterId(),
		Barcode: req.GetBarcode(), Chute: req.GetChute(), Outcome: outcome, RequestID: req.GetRequestId()})
	if err != nil {
		if ref, ok := hub.AsRefusal(err); ok {
			return nil, status.Error(codes.InvalidArgument, ref.Error())
		}
		return nil, status.Error(codes.Internal, "record sort report")
	}
	return &asmv1.ReportSortedResponse{Duplicate: res.Duplicate, WorkOrderId: res.WorkOrderID}, nil
}
