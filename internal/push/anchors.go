package push

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// MaxAnchorsPerMessage bounds how many anchors one trace-topic message
// packs, so a message stays far below the queue's payload limit (an
// anchor is a few hundred bytes).
const MaxAnchorsPerMessage = 512

// EncodeAnchors packs anchors into trace-topic message values: JSON
// arrays of at most MaxAnchorsPerMessage anchors each.
func EncodeAnchors(anchors []Anchor) ([][]byte, error) {
	var out [][]byte
	for len(anchors) > 0 {
		n := min(len(anchors), MaxAnchorsPerMessage)
		b, err := json.Marshal(anchors[:n])
		if err != nil {
			return nil, fmt.Errorf("encode anchors: %w", err)
		}
		out = append(out, b)
		anchors = anchors[n:]
	}
	return out, nil
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
