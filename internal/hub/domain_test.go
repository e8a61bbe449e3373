package hub

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSortPlanDecide(t *testing.T) {
	plan := SortPlan{Station: "SGSC01", Version: 3, ExceptionChute: "X01", Rules: []SortRule{
		{Priority: 10, Destination: "SGLM01", NextHop: "SGLM01", Chute: "C01"},
		{Priority: 1, WaybillType: "bulky", Destination: "SGLM01", NextHop: "SGLM01", Chute: "B01"},
		{Priority: 5, Service: "express", NextHop: "SGLM02", Chute: "C09"},
	}}
	cases := []struct {
		name  string
		w     Waybill
		chute string
		ok    bool
	}{
		{"by destination", Waybill{Type: "standard", Service: "standard", Destination: "SGLM01"}, "C01", true},
		{"lower priority first", Waybill{Type: "bulky", Service: "standard", Destination: "SGLM01"}, "B01", true},
		{"empty field matches any", Waybill{Type: "document", Service: "express", Destination: "SGLM04"}, "C09", true},
		{"no rule", Waybill{Type: "standard", Service: "standard", Destination: "SGLM04"}, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := plan.Decide(tc.w)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.chute, r.Chute)
		})
	}
}

func TestValidBarcode(t *testing.T) {
	for code, want := range map[string]bool{
		"WPSG0000000123": true, "BAG-SGFM01-3FA2C19B0A11": true, "WP1": false, "wpsg0000000123": false,
		"WPSG 000000012": false, "": false, "WPSG0000000123\n": false,
	} {
		require.Equal(t, want, ValidBarcode(code), code)
	}
}

func TestRefusal(t *testing.T) {
	err := fmt.Errorf("inbound: %w", Refuse(CodeOnHold, "%s is on hold", "WP1"))
	r, ok := AsRefusal(err)
	require.True(t, ok)
	require.Equal(t, CodeOnHold, r.Code)
	_, ok = AsRefusal(errors.New("plain"))
	require.False(t, ok)
}

func TestEventCodes(t *testing.T) {
	require.Equal(t, "EMB", ArrivalCode(StationFirstMile))
	require.Equal(t, "EDD", ArrivalCode(StationSortCentre))
	require.Equal(t, "EMG", ArrivalCode(StationLastMile))
	require.Equal(t, "EMC", HandoverCode(HandoverLinehaul, StationFirstMile))
	require.Equal(t, "EDE", HandoverCode(HandoverLinehaul, StationSortCentre))
	require.Equal(t, "EDG", HandoverCode(HandoverCourier, StationLastMile))
	require.Equal(t, "EMI", HandoverCode(HandoverSelfPickup, StationLastMile))
	require.Equal(t, "HTP", HandoverCode(Handover3PL, StationLastMile))
}
