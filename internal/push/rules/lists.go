package rules

import (
	"fmt"
	"unicode/utf8"
)

// Bounds of the lists; they keep one setting well under the API's 1 MiB.
const (
	// MaxDiscard bounds the discard list.
	MaxDiscard = 10_000
	// MaxWhitelist bounds the whitelist.
	MaxWhitelist = 20_000
	// MaxReceiverLen bounds one whitelisted receiver, as the send API does.
	MaxReceiverLen = 256
)

// Discard is push.discard: tasks of the listed templates are not sent; each
// receiver gets the anchor discarded. It stops a template already queued
// (a mistaken campaign, say) without touching the queue.
//
//	{"templates": [12, 40]}
type Discard struct {
	Templates []int64 `json:"templates"`
}

// Validate reports ids that cannot be template ids, and a list too long.
func (d Discard) Validate() error {
	p := problems{setting: "discard list"}
	if len(d.Templates) > MaxDiscard {
		p.add("templates", "%d ids, at most %d", len(d.Templates), MaxDiscard)
	}
	seen := make(map[int64]bool, len(d.Templates))
	for i, id := range d.Templates {
		switch {
		case id < 1:
			p.add(fmt.Sprintf("templates[%d]", i), "%d is not a template id (a positive integer)", id)
		case seen[id]:
			p.add(fmt.Sprintf("templates[%d]", i), "%d listed twice", id)
		}
		seen[id] = true
	}
	return p.err()
}

// Set returns the list as a set, for lookups per task.
func (d Discard) Set() map[int64]struct{} {
	s := make(map[int64]struct{}, len(d.Templates))
	for _, id := range d.Templates {
		s[id] = struct{}{}
	}
	return s
}

// Whitelist is push.whitelist: when Enabled (a test or staging
// environment), only the listed receivers are sent to; every other receiver
// gets not_whitelisted. Disabled, the list is kept but not applied.
//
//	{"enabled": true, "receivers": ["qa@example.com", "13800000000"]}
type Whitelist struct {
	Enabled   bool     `json:"enabled"`
	Receivers []string `json:"receivers"`
}

// Validate reports empty or overlong receivers, duplicates, and a list too long.
func (w Whitelist) Validate() error {
	p := problems{setting: "whitelist"}
	if len(w.Receivers) > MaxWhitelist {
		p.add("receivers", "%d receivers, at most %d", len(w.Receivers), MaxWhitelist)
	}
	seen := make(map[string]bool, len(w.Receivers))
	for i, r := range w.Receivers {
		field := fmt.Sprintf("receivers[%d]", i)
		switch {
		case r == "":
			p.add(field, "empty receiver")
		case len(r) > MaxReceiverLen || !utf8.ValidString(r):
			p.add(field, "not valid UTF-8 of at most %d bytes", MaxReceiverLen)
		case seen[r]:
			p.add(field, "%q listed twice", r)
		}
		seen[r] = true
	}
	return p.err()
}

// Set returns the receivers as a set, for lookups per receiver.
func (w Whitelist) Set() map[string]struct{} {
	s := make(map[string]struct{}, len(w.Receivers))
	for _, r := range w.Receivers {
		s[r] = struct{}{}
	}
	return s
}
