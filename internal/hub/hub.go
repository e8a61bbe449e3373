// Package hub is the in-station operations system of a sorting hub: receive,
// sort, pack, label and hand over parcels. The domain types shared by its
// sub-packages live here; operations, storage, downstream clients, tracking
// and labels live below.
package hub

import "time"

// TrackingTopic is the queue topic tracking events are published to, keyed
// by waybill so each waybill's events stay in order.
const TrackingTopic = "hub.tracking"

// TrackingEvent is what the order centre learns of each work order. It is
// written to the outbox in the same transaction as its work order and
// published to TrackingTopic at least once; EventID makes redelivery safe.
type TrackingEvent struct {
	// EventID is unique per event (the work order id).
	EventID string `json:"eventId"`
	Waybill string `json:"waybill"`
	// Code is the EMSEVT-style event code, e.g. EDD (into sorting centre).
	Code string `json:"code"`
	// Kind is the hub operation: inbound, sort, pack, seal, handover,
	// receive or unpack; a refused operation keeps its kind, with Result
	// "refused", Code HEX and Reason set.
	Kind     string    `json:"kind"`
	Station  string    `json:"station"`
	At       time.Time `json:"at"`
	Operator string    `json:"operator"`
	Device   string    `json:"device,omitempty"`
	// Reason is the reason code of a refusal or exception; empty otherwise.
	Reason      string `json:"reason,omitempty"`
	Description string `json:"description,omitempty"`
	// Result is "ok" or "refused".
	Result string `json:"result,omitempty"`
	// Container is the container the operation was about, if any.
	Container string `json:"container,omitempty"`
}
