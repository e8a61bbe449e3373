package push

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// MaxAnchorPackBytes bounds one packed trace-topic message, well under the
// brokers' default message size limits (1 MiB on NATS and Kafka) even when
// every anchor carries a long detail.
const MaxAnchorPackBytes = 256 << 10

// AnchorPack is one trace-topic message: a JSON array of anchors, keyed by
// its first anchor's messageId so packs spread over partitions.
type AnchorPack struct {
	Key   string
	Value []byte
}

// PackAnchors encodes anchors, in order, as JSON arrays of at most
// MaxAnchorPackBytes each (a single larger anchor goes alone).
func PackAnchors(anchors []Anchor) ([]AnchorPack, error) {
	var packs []AnchorPack
	var cur []byte
	key := ""
	for _, a := range anchors {
		v, err := json.Marshal(a)
		if err != nil {
			return nil, fmt.Errorf("encode anchor of %s: %w", a.MessageID, err)
		}
		if len(cur) > 0 && len(cur)+len(v)+2 > MaxAnchorPackBytes {
			packs = append(packs, AnchorPack{Key: key, Value: append(cur, ']')})
			cur = nil
		}
		if len(cur) == 0 {
			cur = append(make([]byte, 0, min(300*len(anchors), MaxAnchorPackBytes)), '[')
			key = a.MessageID
		} else {
			cur = append(cur, ',')
		}
		cur = append(cur, v...)
	}
	if len(cur) > 0 {
		packs = append(packs, AnchorPack{Key: key, Value: append(cur, ']')})
	}
	return packs, nil
}

// DecodeAnchors reads a trace-topic message value: one anchor object, or a
// JSON array of them.
func DecodeAnchors(b []byte) ([]Anchor, error) {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		var as []Anchor
		if err := json.Unmarshal(b, &as); err != nil {
			return nil, fmt.Errorf("decode anchors: %w", err)
		}
		return as, nil
	}
	var a Anchor
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("decode anchor: %w", err)
	}
	return []Anchor{a}, nil
}
