package hub

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Operation kinds: what a work order did.
const (
	OpInbound  = "inbound"
	OpSort     = "sort"
	OpPack     = "pack"
	OpSeal     = "seal"
	OpHandover = "handover"
	OpReceive  = "receive"
	OpUnpack   = "unpack"
)

// Work order results.
const (
	ResultOK      = "ok"
	ResultRefused = "refused"
)

// Station kinds, as basic data names them.
const (
	StationFirstMile  = "first_mile"
	StationSortCentre = "sort_centre"
	StationLastMile   = "last_mile"
)

// Container kinds.
const (
	ContainerBag  = "bag"
	ContainerCage = "cage"
)

// Container states, in the order a container passes them.
const (
	ContainerOpen       = "open"
	ContainerSealed     = "sealed"
	ContainerHandedOver = "handed_over"
	ContainerReceived   = "received"
	ContainerUnpacked   = "unpacked"
)

// Handover kinds.
const (
	HandoverLinehaul   = "linehaul"
	HandoverCourier    = "courier"
	Handover3PL        = "3pl"
	HandoverSelfPickup = "self_pickup"
)

// Parcel statuses as the hub sees them.
const (
	ParcelInbound        = "inbound"
	ParcelSorted         = "sorted"
	ParcelPacked         = "packed"
	ParcelSealed         = "sealed"
	ParcelInTransit      = "in_transit"
	ParcelReceived       = "received"
	ParcelOutForDelivery = "out_for_delivery"
	ParcelWith3PL        = "with_3pl"
	ParcelCollected      = "collected"
	ParcelException      = "exception"
)

// Delivery statuses as the delivery service reports them.
const (
	DeliveryCreated        = "created"
	DeliveryInTransit      = "in_transit"
	DeliveryOutForDelivery = "out_for_delivery"
	DeliveryDelivered      = "delivered"
	DeliveryCancelled      = "cancelled"
	DeliveryOnHold         = "on_hold"
)

// Station is one site of the network as basic data describes it.
type Station struct {
	Code           string
	Name           string
	Kind           string
	Market         string
	TimeZone       string
	Active         bool
	ExceptionChute string
}

// Receiver is who a parcel goes to.
type Receiver struct {
	Name    string
	Phone   string
	Address string
}

// Waybill is a parcel's order as the order centre knows it.
type Waybill struct {
	No          string
	Market      string
	Origin      string
	Destination string
	Type        string
	Service     string
	WeightGrams int64
	CODAmount   int64
	Currency    string
	Receiver    Receiver
	CreatedAt   time.Time
}

// SortRule maps parcels to a next hop and a chute; empty match fields match
// anything.
type SortRule struct {
	Priority    int32
	WaybillType string
	Service     string
	Destination string
	NextHop     string
	Chute       string
}

// SortPlan is one version of a station's rules, ordered by priority.
type SortPlan struct {
	Station        string
	Version        int64
	Rules          []SortRule
	ExceptionChute string
}

// Decide returns the first rule in priority order that takes w, or false.
func (p SortPlan) Decide(w Waybill) (SortRule, bool) {
	var best SortRule
	found := false
	for _, r := range p.Rules {
		if r.WaybillType != "" && r.WaybillType != w.Type ||
			r.Service != "" && r.Service != w.Service ||
			r.Destination != "" && r.Destination != w.Destination {
			continue
		}
		if !found || r.Priority < best.Priority {
			best, found = r, true
		}
	}
	return best, found
}

// BillingVerdict is billing's answer for a parcel.
type BillingVerdict struct {
	OK         bool
	ReasonCode string
	Message    string
}

// DeliveryStatus is where a parcel stands in its delivery life.
type DeliveryStatus struct {
	Status string
	Reason string
}

// Trip is one scheduled linehaul run.
type Trip struct {
	ID          string
	Origin      string
	Destination string
	Departure   time.Time
}

// PreAlertContainer is one container announced to the receiving station.
type PreAlertContainer struct {
	ID          string
	Kind        string
	Destination string
	SealNumber  string
	Waybills    []string
	Children    []string
}

// PreAlert announces what a linehaul trip carries.
type PreAlert struct {
	RequestID  string
	TripID     string
	Origin     string
	SealNumber string
	Containers []PreAlertContainer
}

var barcodeRE = regexp.MustCompile(`^[A-Z0-9][A-Z0-9-]{5,63}$`)

// ValidBarcode reports whether s can be a waybill number or container id:
// 6–64 upper-case letters, digits and dashes. Scanners that misread produce
// lower-case noise, spaces or truncated codes, which this rejects.
func ValidBarcode(s string) bool { return barcodeRE.MatchString(s) }

// Reason codes of refusals: stable, snake_case, part of the external contract.
const (
	CodeInvalidBody           = "invalid_body"
	CodeMalformedBarcode      = "malformed_barcode"
	CodeUnknownWaybill        = "unknown_waybill"
	CodeUnknownStation        = "unknown_station"
	CodeUnknownContainer      = "unknown_container"
	CodeUnknownTrip           = "unknown_trip"
	CodeWrongStation          = "wrong_station"
	CodeStationInactive       = "station_inactive"
	CodeMisroute              = "misroute"
	CodeNoRule                = "no_rule"
	CodeNotSorted             = "not_sorted"
	CodeAlreadyPacked         = "already_packed"
	CodeContainerSealed       = "container_sealed"
	CodeContainerClosed       = "container_closed"
	CodeContainerEmpty        = "container_empty"
	CodeNotSealed             = "not_sealed"
	CodeNotHandedOver         = "not_handed_over"
	CodeNotReceived           = "not_received"
	CodeBillingBlocked        = "billing_blocked"
	CodeCODOverLimit          = "cod_over_limit"
	CodeOutForDelivery        = "out_for_delivery"
	CodeDelivered             = "delivered"
	CodeCancelled             = "cancelled"
	CodeOnHold                = "on_hold"
	CodeDownstreamTimeout     = "downstream_timeout"
	CodeDownstreamUnavailable = "downstream_unavailable"
	CodeTimeout               = "timeout"
)

// Refusal is why the hub refused an operation: a stable reason code and a
// message for people. Operations return it as their error; the edges
// translate the code into an HTTP status or a sorter answer.
type Refusal struct {
	Code    string
	Message string
}

// Error implements error.
func (r *Refusal) Error() string { return r.Code + ": " + r.Message }

// Refuse returns a refusal with a formatted message.
func Refuse(code, format string, args ...any) *Refusal {
	return &Refusal{Code: code, Message: fmt.Sprintf(format, args...)}
}

// AsRefusal returns the refusal in err's chain, if any.
func AsRefusal(err error) (*Refusal, bool) {
	var r *Refusal
	ok := errors.As(err, &r)
	return r, ok
}

// Transient reports whether a refusal code depends on a downstream
// system's momentary health rather than on the parcel.
func Transient(code string) bool {
	return code == CodeDownstreamTimeout || code == CodeDownstreamUnavailable
}
