package tracking

import "github.com/waypost/waypost/internal/hub"

// codeEMH is the EMSEVT code of an unsuccessful delivery attempt. The hub
// never emits it (delivery attempts are the courier side's), but the order
// centre's track shows it, so it has a description.
const codeEMH = "EMH"

// descriptions are the default descriptions the order feed gives events
// that carry none. The codes are the hub's (see hub/events.go).
var descriptions = map[string]string{
	hub.EventArrivalFirstMile:      "Arrived at first-mile hub",
	hub.EventDepartureFirstMile:    "Departed first-mile hub",
	hub.EventIntoSortCentre:        "Arrived at sorting centre",
	hub.EventOutOfSortCentre:       "Departed sorting centre",
	hub.EventArrivalDeliveryOffice: "Arrived at delivery hub",
	hub.EventOutForDelivery:        "Out for delivery",
	hub.EventDelivered:             "Delivered",
	codeEMH:                        "Delivery attempt unsuccessful",
	hub.EventSorted:                "Sorted",
	hub.EventPacked:                "Packed",
	hub.EventSealed:                "Container sealed",
	hub.EventUnpacked:              "Unpacked",
	hub.EventThirdParty:            "Handed to partner carrier",
	hub.EventException:             "Exception",
}

// Describe returns the default description of an event code, or "" for a
// code it does not know.
func Describe(code string) string { return descriptions[code] }
