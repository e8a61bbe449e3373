package hubapi

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	asmv1 "github.com/waypost/waypost/proto/gen/go/waypost/hub/asm/v1"
)

func sortReq(station, barcode string) *asmv1.GetSortResultRequest {
	return &asmv1.GetSortResultRequest{Station: station, SorterId: "asm-1", Barcode: barcode, RequestId: "r-" + barcode}
}

func TestSorterLive(t *testing.T) { eachFlow(t, sorterLive) }

func sorterLive(t *testing.T, flowName string) {
	e := newEnv(t, envOpts{flow: flowName})
	wb := e.createWaybill(t, "SGFM01", "SGLM02")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	got, err := e.sorter.GetSortResult(ctx, sortReq("SGFM01", wb))
	require.NoError(t, err)
	require.Equal(t, "SGSC01", got.GetNextHop())
	require.Equal(t, asmv1.ResultSource_RESULT_SOURCE_LIVE, got.GetSource())
	require.Empty(t, got.GetReasonCode())
	require.Equal(t, int64(1), got.GetSortPlanVersion())

	cases := []struct{ name, station, barcode, reason string }{
		{"malformed barcode", "SGFM01", "??", "malformed_barcode"},
		{"unknown waybill", "SGFM01", "WPSG0000000000", "unknown_waybill"},
		{"wrong station", "MYFM01", wb, "wrong_station"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.sorter.GetSortResult(ctx, sortReq(tc.station, tc.barcode))
			require.NoError(t, err)
			require.Equal(t, tc.reason, got.GetReasonCode())
			require.Equal(t, "X01", got.GetChute())
			require.Equal(t, asmv1.ResultSource_RESULT_SOURCE_EXCEPTION, got.GetSource())
		})
	}

	report := &asmv1.ReportSortedRequest{Station: "SGFM01", SorterId: "asm-1", Barcode: wb, Chute: got.GetChute(),
		Outcome: asmv1.SortOutcome_SORT_OUTCOME_SORTED, RequestId: "r-1"}
	first, err := e.sorter.ReportSorted(ctx, report)
	require.NoError(t, err)
	require.False(t, first.GetDuplicate())
	again, err := e.sorter.ReportSorted(ctx, report)
	require.NoError(t, err)
	require.True(t, again.GetDuplicate())
	require.Equal(t, first.GetWorkOrderId(), again.GetWorkOrderId())
	require.Equal(t, []string{"HSR"}, e.outboxCodes(t, wb))
}

// TestSorterDeadline makes the order centre slower than the machine's
// deadline: the answer is the exception chute with reason timeout, and it
// arrives before the deadline (a late answer would fail the call with
// DEADLINE_EXCEEDED).
func TestSorterDeadline(t *testing.T) { eachFlow(t, sorterDeadline) }

func sorterDeadline(t *testing.T, flowName string) {
	e := newEnv(t, envOpts{flow: flowName, injection: "order=1s"})
	// Warm the connection first: dialling inside a short deadline would
	// measure connection setup, not the sorter's answer time.
	warm, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err := e.sorter.GetSortResult(warm, sortReq("SGFM01", "!"))
	cancel()
	require.NoError(t, err)
	for _, deadline := range []time.Duration{300 * time.Millisecond, 80 * time.Millisecond} {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		got, err := e.sorter.GetSortResult(ctx, sortReq("SGFM01", "WPSG0000000042"))
		cancel()
		require.NoError(t, err, "deadline %s", deadline)
		require.Equal(t, "timeout", got.GetReasonCode())
		require.Equal(t, "X01", got.GetChute())
		require.Equal(t, asmv1.ResultSource_RESULT_SOURCE_EXCEPTION, got.GetSource())
	}
}
