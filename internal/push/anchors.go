package push

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// MaxAnchorPackBytes bounds one packed trace-topic message, well under the
// brokers' default message size limits (1 MiB on NATS and Kafka) even when
// every anchor carries a long detail.
const MaxAnchorPackBytes = 256 << 10

// AnchorPack is one trace-topic message: a JSON array of anchors and
// receiver sets, keyed by its first item's messageId so packs spread over
// partitions.
type AnchorPack struct {
	Key   string
	Value []byte
}

// ReceiverSet is the compact trace record of one state of one message for
// many receivers at once: what the access layer publishes instead of one
// received anchor per receiver. DecodeAnchors expands it into one Anchor
// per receiver, in order, with the event id <messageId>.<state>.<i> (i
// counting from 0 within the set), the same anchors every reader saw
// before the set existed.
type ReceiverSet struct {
	MessageID  string    `json:"messageId"`
	BusinessID string    `json:"businessId"`
	State      string    `json:"state"`
	At         time.Time `json:"at"`
	Receivers  []string  `json:"receivers"`
}

// Anchors expands s into its anchors.
func (s ReceiverSet) Anchors() []Anchor {
	out := make([]Anchor, len(s.Receivers))
	prefix := s.MessageID + "." + s.State + "."
	for i, r := range s.Receivers {
		out[i] = Anchor{EventID: prefix + strconv.Itoa(i), MessageID: s.MessageID, BusinessID: s.BusinessID,
			Receiver: r, State: s.State, At: s.At}
	}
	return out
}

// AppendJSON appends s as one JSON object, the form DecodeAnchors reads,
// byte for byte what json.Marshal makes of it; it is hand-written because
// a batch send encodes a set per message.
func (s ReceiverSet) AppendJSON(b []byte) []byte {
	b = append(b, `{"messageId":`...)
	b = AppendJSONString(b, s.MessageID)
	b = append(b, `,"businessId":`...)
	b = AppendJSONString(b, s.BusinessID)
	b = append(b, `,"state":`...)
	b = AppendJSONString(b, s.State)
	b = append(b, `,"at":`...)
	b = AppendJSONTime(b, s.At)
	b = append(b, `,"receivers":`...)
	if s.Receivers == nil {
		// null would read back as a plain (invalid) anchor.
		return append(b, "[]}"...)
	}
	b = AppendJSONStrings(b, s.Receivers)
	return append(b, '}')
}

// Packer gathers encoded trace items (anchor or receiver-set objects) into
// trace-topic messages of at most MaxAnchorPackBytes each; an item larger
// than that goes alone. The zero value is ready to use.
type Packer struct {
	packs []AnchorPack
	cur   []byte
	key   string
	// Hint sizes a new pack's buffer; 0 means MaxAnchorPackBytes.
	Hint int
}

// Add appends one encoded item, keyed by its messageId.
func (p *Packer) Add(messageID string, item []byte) {
	if len(p.cur) > 0 && len(p.cur)+len(item)+2 > MaxAnchorPackBytes {
		p.cut()
	}
	if len(p.cur) == 0 {
		size := p.Hint
		if size <= 0 || size > MaxAnchorPackBytes {
			size = MaxAnchorPackBytes
		}
		p.cur = append(make([]byte, 0, max(size, len(item)+2)), '[')
		p.key = messageID
	} else {
		p.cur = append(p.cur, ',')
	}
	p.cur = append(p.cur, item...)
}

func (p *Packer) cut() {
	p.packs = append(p.packs, AnchorPack{Key: p.key, Value: append(p.cur, ']')})
	p.cur = nil
}

// Packs returns the packs made so far and resets p.
func (p *Packer) Packs() []AnchorPack {
	if len(p.cur) > 0 {
		p.cut()
	}
	out := p.packs
	p.packs = nil
	return out
}

// PackAnchors encodes anchors, in order, as JSON arrays of at most
// MaxAnchorPackBytes each (a single larger anchor goes alone).
func PackAnchors(anchors []Anchor) ([]AnchorPack, error) {
	p := Packer{Hint: 300 * len(anchors)}
	for _, a := range anchors {
		v, err := json.Marshal(a)
		if err != nil {
			return nil, fmt.Errorf("encode anchor of %s: %w", a.MessageID, err)
		}
		p.Add(a.MessageID, v)
	}
	return p.Packs(), nil
}

// traceItem is either an Anchor or, when Receivers is present, a
// ReceiverSet.
type traceItem struct {
	Anchor
	Receivers []string `json:"receivers"`
}

func (it *traceItem) expand(out []Anchor) []Anchor {
	if it.Receivers == nil {
		return append(out, it.Anchor)
	}
	return append(out, ReceiverSet{MessageID: it.MessageID, BusinessID: it.BusinessID, State: it.State,
		At: it.At, Receivers: it.Receivers}.Anchors()...)
}

// DecodeAnchors reads a trace-topic message value: one anchor object, or a
// JSON array of anchors and receiver sets, each set expanded into its
// anchors.
//
// The strings of the anchors may share one allocation holding the whole
// value: a caller that keeps a few of them for long (as map keys, say)
// should strings.Clone them. The states are the package's constants.
func DecodeAnchors(b []byte) ([]Anchor, error) {
	b = bytes.TrimSpace(b)
	if len(b) > 0 {
		if out, ok := decodeAnchorsFast(b); ok {
			return out, nil
		}
	}
	return decodeAnchorsJSON(b)
}

// decodeAnchorsJSON is DecodeAnchors by encoding/json, for what
// decodeAnchorsFast leaves to it: every error, and values spelled unusually.
func decodeAnchorsJSON(b []byte) ([]Anchor, error) {
	if len(b) > 0 && b[0] == '[' {
		var items []traceItem
		if err := json.Unmarshal(b, &items); err != nil {
			return nil, fmt.Errorf("decode anchors: %w", err)
		}
		if len(items) == 0 {
			return nil, nil
		}
		out := make([]Anchor, 0, len(items))
		for i := range items {
			out = items[i].expand(out)
		}
		return out, nil
	}
	var it traceItem
	if err := json.Unmarshal(b, &it); err != nil {
		return nil, fmt.Errorf("decode anchor: %w", err)
	}
	return it.expand(nil), nil
}
