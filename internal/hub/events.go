package hub

// Tracking event codes. UPU EMSEVT codes where one fits; hub-specific
// codes (prefix "H") where none does. docs/hub.md lists them.
const (
	// EventArrivalFirstMile (EMB): received at a first-mile hub.
	EventArrivalFirstMile = "EMB"
	// EventDepartureFirstMile (EMC): left a first-mile hub on a linehaul.
	EventDepartureFirstMile = "EMC"
	// EventIntoSortCentre (EDD): arrived at a sort centre.
	EventIntoSortCentre = "EDD"
	// EventOutOfSortCentre (EDE): left a sort centre on a linehaul.
	EventOutOfSortCentre = "EDE"
	// EventArrivalDeliveryOffice (EMG): arrived at the last-mile hub.
	EventArrivalDeliveryOffice = "EMG"
	// EventOutForDelivery (EDG): handed to a courier for delivery.
	EventOutForDelivery = "EDG"
	// EventDelivered (EMI): collected by the receiver at the hub.
	EventDelivered = "EMI"
	// EventSorted (HSR): sorted to a chute towards its next hop.
	EventSorted = "HSR"
	// EventPacked (HPK): packed into a container.
	EventPacked = "HPK"
	// EventSealed (HSL): its container was sealed.
	EventSealed = "HSL"
	// EventUnpacked (HUP): taken out of its container; inbound at the station.
	EventUnpacked = "HUP"
	// EventThirdParty (HTP): handed to a third-party carrier.
	EventThirdParty = "HTP"
	// EventException (HEX): an operation on the parcel was refused; the
	// event's Reason says why.
	EventException = "HEX"
)

// ArrivalCode is the event code of a parcel arriving at a station of kind.
func ArrivalCode(stationKind string) string {
	switch stationKind {
	case StationFirstMile:
		return EventArrivalFirstMile
	case StationLastMile:
		return EventArrivalDeliveryOffice
	default:
		return EventIntoSortCentre
	}
}

// HandoverCode is the event code of a parcel handed over at a station of
// stationKind by a handover of kind.
func HandoverCode(kind, stationKind string) string {
	switch kind {
	case HandoverCourier:
		return EventOutForDelivery
	case HandoverSelfPickup:
		return EventDelivered
	case Handover3PL:
		return EventThirdParty
	}
	if stationKind == StationFirstMile {
		return EventDepartureFirstMile
	}
	return EventOutOfSortCentre
}
