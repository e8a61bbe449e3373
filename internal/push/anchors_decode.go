package push

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// decodeAnchorsFast is DecodeAnchors for the packs the access layer and the
// handler write: an array of objects (or one object) whose keys are exactly
// the field names, whose strings have no escapes, and whose values are
// strings, except receivers, an array of them. It reports false for anything
// else, well-formed or not, and the caller then runs encoding/json, which
// decides the value or the error; so what it returns is what encoding/json
// would have made of b. b has been trimmed of surrounding space.
//
// Every string of the result is a substring of one copy of b, and a
// receiver set's event ids share one allocation, so a pack costs a handful
// of allocations instead of several per anchor. The states are the
// constants (see internState), so a long-lived map keyed by a state does
// not pin the pack.
func decodeAnchorsFast(b []byte) ([]Anchor, bool) {
	d := anchorDecoder{s: string(b)}
	d.items = make([]Anchor, 0, strings.Count(d.s, "{"))
	if d.s[0] == '[' {
		d.i = 1
		d.space()
		if d.peek() == ']' {
			d.i++
			return nil, d.i == len(d.s)
		}
		for {
			if !d.item() {
				return nil, false
			}
			d.space()
			switch d.peek() {
			case ',':
				d.i++
				d.space()
				continue
			case ']':
				d.i++
			default:
				return nil, false
			}
			break
		}
	} else if !d.item() {
		return nil, false
	}
	if d.i != len(d.s) {
		return nil, false
	}
	out := d.expand()
	if out == nil && d.s[0] == '[' {
		// encoding/json's path returns an empty slice for an array
		// whose items were all empty receiver sets.
		out = []Anchor{}
	}
	return out, true
}

// span is s[from:to] of the decoder's input.
type span struct{ from, to int }

// setRef marks items[item] of the decoder as a receiver set whose
// receivers are spans[rcvFrom:rcvTo].
type setRef struct {
	item, rcvFrom, rcvTo int
	ok                   bool // a receivers array was read
}

type anchorDecoder struct {
	s     string
	i     int
	items []Anchor // the objects as read, receiver sets included
	sets  []setRef // in item order
	spans []span
}

func (d *anchorDecoder) peek() byte {
	if d.i < len(d.s) {
		return d.s[d.i]
	}
	return 0
}

func (d *anchorDecoder) space() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// str reads a string without escapes, control characters or invalid UTF-8
// (encoding/json replaces the latter, so it decides those).
func (d *anchorDecoder) str() (span, bool) {
	if d.peek() != '"' {
		return span{}, false
	}
	d.i++
	from, ascii := d.i, true
	for d.i < len(d.s) {
		c := d.s[d.i]
		switch {
		case c == '"':
			sp := span{from, d.i}
			d.i++
			if !ascii && !utf8.ValidString(d.s[sp.from:sp.to]) {
				return span{}, false
			}
			return sp, true
		case c == '\\' || c < 0x20:
			return span{}, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
		d.i++
	}
	return span{}, false
}

func (d *anchorDecoder) text(sp span) string { return d.s[sp.from:sp.to] }

// item reads one object into d.items.
func (d *anchorDecoder) item() bool {
	if d.peek() != '{' {
		return false
	}
	d.i++
	d.space()
	var (
		a   Anchor
		set setRef
	)
	if d.peek() == '}' {
		d.i++
		d.items = append(d.items, a)
		return true
	}
	for {
		key, ok := d.str()
		if !ok {
			return false
		}
		d.space()
		if d.peek() != ':' {
			return false
		}
		d.i++
		d.space()
		if !d.field(&a, &set, d.text(key)) {
			return false
		}
		d.space()
		switch d.peek() {
		case ',':
			d.i++
			d.space()
			continue
		case '}':
			d.i++
			d.items = append(d.items, a)
			if set.ok {
				set.item = len(d.items) - 1
				d.sets = append(d.sets, set)
			}
			return true
		}
		return false
	}
}

// field reads the value of key into a or set.
func (d *anchorDecoder) field(a *Anchor, set *setRef, key string) bool {
	if key == "receivers" {
		return d.receivers(set)
	}
	v, ok := d.str()
	if !ok {
		return false
	}
	switch key {
	case "eventId":
		a.EventID = d.text(v)
	case "messageId":
		a.MessageID = d.text(v)
	case "businessId":
		a.BusinessID = d.text(v)
	case "receiver":
		a.Receiver = d.text(v)
	case "state":
		a.State = internState(d.text(v))
	case "detail":
		a.Detail = d.text(v)
	case "at":
		// What encoding/json calls for a time.Time: the quoted literal.
		if err := a.At.UnmarshalJSON([]byte(d.s[v.from-1 : v.to+1])); err != nil {
			return false
		}
	default:
		// encoding/json also matches keys case-insensitively.
		return false
	}
	return true
}

// receivers reads an array of strings; a repeated key replaces the earlier
// array, as encoding/json does.
func (d *anchorDecoder) receivers(it *setRef) bool {
	if d.peek() != '[' {
		return false
	}
	d.i++
	d.space()
	if d.spans == nil {
		// Upper bounds, counted once, for the receivers and sets ahead.
		d.spans = make([]span, 0, strings.Count(d.s[d.i:], ",")+1)
		d.sets = make([]setRef, 0, strings.Count(d.s[d.i:], `"receivers"`)+1)
	}
	it.ok, it.rcvFrom = true, len(d.spans)
	if d.peek() == ']' {
		d.i++
		it.rcvTo = it.rcvFrom
		return true
	}
	for {
		v, ok := d.str()
		if !ok {
			return false
		}
		d.spans = append(d.spans, v)
		d.space()
		switch d.peek() {
		case ',':
			d.i++
			d.space()
			continue
		case ']':
			d.i++
			it.rcvTo = len(d.spans)
			return true
		}
		return false
	}
}

// expand turns the items into anchors, a receiver set into one per
// receiver with the event id <messageId>.<state>.<i>, as ReceiverSet.Anchors.
func (d *anchorDecoder) expand() []Anchor {
	if len(d.sets) == 0 {
		if len(d.items) == 0 {
			return nil
		}
		return d.items
	}
	n, idBytes := len(d.items)-len(d.sets), 0
	for _, set := range d.sets {
		k := set.rcvTo - set.rcvFrom
		n += k
		a := &d.items[set.item]
		idBytes += k*(len(a.MessageID)+len(a.State)+2) + digitsUpTo(k)
	}
	if n == 0 {
		return nil
	}
	// The sets' event ids are written into one buffer, made one string,
	// and cut from it in the same order.
	var all string
	if idBytes > 0 {
		ids := make([]byte, 0, idBytes)
		for _, set := range d.sets {
			a := &d.items[set.item]
			for k := range set.rcvTo - set.rcvFrom {
				ids = append(ids, a.MessageID...)
				ids = append(ids, '.')
				ids = append(ids, a.State...)
				ids = append(ids, '.')
				ids = strconv.AppendInt(ids, int64(k), 10)
			}
		}
		all = string(ids)
	}
	out := make([]Anchor, 0, n)
	from, sets := 0, d.sets
	for i := range d.items {
		a := &d.items[i]
		if len(sets) == 0 || sets[0].item != i {
			out = append(out, *a)
			continue
		}
		set := sets[0]
		sets = sets[1:]
		fixed := len(a.MessageID) + len(a.State) + 2
		for k, sp := range d.spans[set.rcvFrom:set.rcvTo] {
			to := from + fixed + decimalLen(k)
			out = append(out, Anchor{EventID: all[from:to], MessageID: a.MessageID, BusinessID: a.BusinessID,
				Receiver: d.text(sp), State: a.State, At: a.At})
			from = to
		}
	}
	return out
}

// digitsUpTo is the number of decimal digits of 0, 1, …, k-1 together.
func digitsUpTo(k int) int {
	total := 0
	for p, w := 1, 1; p < k; p, w = p*10, w+1 {
		total += (min(k, p*10) - p) * w
	}
	if k > 0 {
		total++ // the "0"
	}
	return total
}

// decimalLen is the number of decimal digits of k ≥ 0.
func decimalLen(k int) int {
	n := 1
	for ; k >= 10; k /= 10 {
		n++
	}
	return n
}

// internState returns the constant for a known state, so that nothing
// long-lived holds on to the pack through a state.
func internState(s string) string {
	switch s {
	case StateReceived:
		return StateReceived
	case StateSent:
		return StateSent
	case StateSendFailed:
		return StateSendFailed
	case StateDelivered:
		return StateDelivered
	case StateUndelivered:
		return StateUndelivered
	case StateInvalidReceiver:
		return StateInvalidReceiver
	case StateDiscarded:
		return StateDiscarded
	case StateQuietDropped:
		return StateQuietDropped
	case StateQuietDelayed:
		return StateQuietDelayed
	case StateContentDeduplicated:
		return StateContentDeduplicated
	case StateFrequencyCapped:
		return StateFrequencyCapped
	case StateNotWhitelisted:
		return StateNotWhitelisted
	case StateRecalled:
		return StateRecalled
	}
	return strings.Clone(s)
}
