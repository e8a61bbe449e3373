package tracking_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/hub/tracking"
)

func TestDescribe(t *testing.T) {
	tests := []struct{ code, want string }{
		{hub.EventArrivalFirstMile, "Arrived at first-mile hub"},
		{hub.EventDepartureFirstMile, "Departed first-mile hub"},
		{hub.EventIntoSortCentre, "Arrived at sorting centre"},
		{hub.EventOutOfSortCentre, "Departed sorting centre"},
		{hub.EventArrivalDeliveryOffice, "Arrived at delivery hub"},
		{hub.EventOutForDelivery, "Out for delivery"},
		{hub.EventDelivered, "Delivered"},
		{"EMH", "Delivery attempt unsuccessful"},
		{hub.EventSorted, "Sorted"},
		{hub.EventPacked, "Packed"},
		{hub.EventSealed, "Container sealed"},
		{hub.EventUnpacked, "Unpacked"},
		{hub.EventThirdParty, "Handed to partner carrier"},
		{hub.EventException, "Exception"},
		{"ZZZ", ""},
	}
	for _, tc := range tests {
		t.Run(tc.code, func(t *testing.T) {
			require.Equal(t, tc.want, tracking.Describe(tc.code))
		})
	}
}
