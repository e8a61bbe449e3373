package dedup

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/waypost/waypost/internal/platform/dynconf"
	"github.com/waypost/waypost/internal/push"
)

// ErrInvalidSettings is wrapped by every settings error, so an API can map
// them all to one code and show the message, which names the field.
var ErrInvalidSettings = errors.New("invalid dedup settings")

// Bounds of the settings; they keep one window's size and lifetime bounded.
const (
	// MaxNum bounds both rules' num: a window holds up to num entries.
	MaxNum = 10_000
	// MaxContentTime bounds the content window, in seconds (30 days).
	MaxContentTime = 30 * 24 * 3600
)

// ContentRule is the seed's deduplication_10: at most Num messages with the
// same template, receiver and rendered content within Time seconds. Num 0
// turns the rule off.
type ContentRule struct {
	Num  int `json:"num"`
	Time int `json:"time"`
}

// FrequencyRule is the seed's deduplication_20: at most Num messages per
// receiver and channel per calendar day in the template's time zone. Num 0
// turns the rule off.
type FrequencyRule struct {
	Num int `json:"num"`
}

// Override replaces one or both rules for one message type; a nil rule
// inherits the top-level one.
type Override struct {
	Content   *ContentRule   `json:"deduplication_10,omitempty"`
	Frequency *FrequencyRule `json:"deduplication_20,omitempty"`
}

// Settings is the dedup configuration. Its JSON is the seed's shape,
// {"deduplication_10":{"num":1,"time":300},"deduplication_20":{"num":5}},
// with two optional keys:
//
//	"frequencyExempt": ["auth_code"]       message types the daily cap never counts
//	"msgTypes": {"marketing": {"deduplication_20": {"num": 2}}}
//
// Decoding starts from DefaultSettings: a key left out keeps its default, and
// a field left out of a rule keeps the value it has at the top level (so an
// override {"deduplication_10":{"num":3}} keeps the top-level time). Unknown
// keys are an error.
type Settings struct {
	Content         ContentRule               `json:"deduplication_10"`
	Frequency       FrequencyRule             `json:"deduplication_20"`
	FrequencyExempt []push.MsgType            `json:"frequencyExempt"`
	MsgTypes        map[push.MsgType]Override `json:"msgTypes,omitempty"`
}

// DefaultSettings is the seed's configuration: one message with the same
// content per 5 minutes, five per receiver and channel per day, and
// verification codes exempt from the daily cap.
func DefaultSettings() Settings {
	return Settings{
		Content:         ContentRule{Num: 1, Time: 300},
		Frequency:       FrequencyRule{Num: 5},
		FrequencyExempt: []push.MsgType{push.MsgAuthCode},
	}
}

// ParseSettings decodes and validates settings JSON.
func ParseSettings(data []byte) (Settings, error) {
	var s Settings
	if err := json.Unmarshal(data, &s); err != nil {
		if !errors.Is(err, ErrInvalidSettings) { // a syntax error, found before UnmarshalJSON runs
			err = fmt.Errorf("dedup settings: %w: %w", err, ErrInvalidSettings)
		}
		return Settings{}, err
	}
	if err := s.Validate(); err != nil {
		return Settings{}, err
	}
	return s, nil
}

// rawSettings is the wire form; rules stay raw so each can be decoded onto
// the value it inherits.
type rawSettings struct {
	Content         json.RawMessage              `json:"deduplication_10"`
	Frequency       json.RawMessage              `json:"deduplication_20"`
	FrequencyExempt *[]push.MsgType              `json:"frequencyExempt"`
	MsgTypes        map[push.MsgType]rawOverride `json:"msgTypes"`
}

type rawOverride struct {
	Content   json.RawMessage `json:"deduplication_10"`
	Frequency json.RawMessage `json:"deduplication_20"`
}

// UnmarshalJSON decodes onto DefaultSettings, refusing unknown keys; see Settings.
func (s *Settings) UnmarshalJSON(data []byte) error {
	var raw rawSettings
	if err := dynconf.DecodeStrict(data, &raw); err != nil {
		return fmt.Errorf("dedup settings: %w: %w", err, ErrInvalidSettings)
	}
	out := DefaultSettings()
	if err := decodeRule("deduplication_10", raw.Content, &out.Content); err != nil {
		return err
	}
	if err := decodeRule("deduplication_20", raw.Frequency, &out.Frequency); err != nil {
		return err
	}
	if raw.FrequencyExempt != nil {
		out.FrequencyExempt = *raw.FrequencyExempt
	}
	for mt, ro := range raw.MsgTypes {
		var o Override
		if !isNull(ro.Content) {
			c := out.Content
			if err := decodeRule("msgTypes."+string(mt)+".deduplication_10", ro.Content, &c); err != nil {
				return err
			}
			o.Content = &c
		}
		if !isNull(ro.Frequency) {
			f := out.Frequency
			if err := decodeRule("msgTypes."+string(mt)+".deduplication_20", ro.Frequency, &f); err != nil {
				return err
			}
			o.Frequency = &f
		}
		if out.MsgTypes == nil {
			out.MsgTypes = make(map[push.MsgType]Override)
		}
		out.MsgTypes[mt] = o
	}
	*s = out
	return nil
}

// MarshalJSON writes the settings so that ParseSettings reads them back
// unchanged: a nil exempt list is written [] (null would mean "the default").
func (s Settings) MarshalJSON() ([]byte, error) {
	type plain Settings // drops the methods, so this does not recurse
	if s.FrequencyExempt == nil {
		s.FrequencyExempt = []push.MsgType{}
	}
	return json.Marshal(plain(s))
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

// decodeRule decodes raw (when present) onto v, which holds the inherited values.
func decodeRule(field string, raw json.RawMessage, v any) error {
	if isNull(raw) {
		return nil
	}
	if err := dynconf.DecodeStrict(raw, v); err != nil {
		return fmt.Errorf("dedup settings: %s: %w: %w", field, err, ErrInvalidSettings)
	}
	return nil
}

// Validate reports every problem, each naming its field and wrapping
// ErrInvalidSettings.
func (s Settings) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("dedup settings: %s: %s: %w", field, fmt.Sprintf(format, args...), ErrInvalidSettings))
	}
	checkContent := func(field string, c ContentRule) {
		if c.Num < 0 || c.Num > MaxNum {
			bad(field+".num", "%d not in 0..%d (0 turns the rule off)", c.Num, MaxNum)
		}
		if c.Time < 0 || c.Time > MaxContentTime || (c.Num > 0 && c.Time == 0) {
			bad(field+".time", "%d not in 1..%d seconds", c.Time, MaxContentTime)
		}
	}
	checkFrequency := func(field string, f FrequencyRule) {
		if f.Num < 0 || f.Num > MaxNum {
			bad(field+".num", "%d not in 0..%d (0 turns the rule off)", f.Num, MaxNum)
		}
	}
	checkContent("deduplication_10", s.Content)
	checkFrequency("deduplication_20", s.Frequency)
	known := push.MsgTypes()
	for i, mt := range s.FrequencyExempt {
		field := fmt.Sprintf("frequencyExempt[%d]", i)
		switch {
		case !slices.Contains(known, mt):
			bad(field, "unknown message type %q (want one of %v)", mt, known)
		case slices.Index(s.FrequencyExempt, mt) < i:
			bad(field, "%q listed twice", mt)
		}
	}
	// Sorted so the errors come out in a stable order.
	types := make([]push.MsgType, 0, len(s.MsgTypes))
	for mt := range s.MsgTypes {
		types = append(types, mt)
	}
	slices.Sort(types)
	for _, mt := range types {
		o, field := s.MsgTypes[mt], "msgTypes."+string(mt)
		if !slices.Contains(known, mt) {
			bad(field, "unknown message type %q (want one of %v)", mt, known)
			continue
		}
		if o.Content != nil {
			checkContent(field+".deduplication_10", *o.Content)
		}
		if o.Frequency != nil {
			checkFrequency(field+".deduplication_20", *o.Frequency)
			if slices.Contains(s.FrequencyExempt, mt) {
				bad(field+".deduplication_20", "%q is in frequencyExempt; remove it there to cap it", mt)
			}
		}
	}
	return errors.Join(errs...)
}

// rules is what one message type gets: the rules in force, resolved once per
// Set so that Check does no lookups beyond one map read.
type rules struct {
	contentNum    int
	contentWindow time.Duration
	frequencyNum  int
}

// resolved is a validated Settings with its rules per message type.
type resolved struct {
	settings Settings
	def      rules
	byType   map[push.MsgType]rules
}

func resolve(s Settings) *resolved {
	// A deep copy: the caller may go on changing its map and slices.
	s.FrequencyExempt = slices.Clone(s.FrequencyExempt)
	if s.MsgTypes != nil {
		m := make(map[push.MsgType]Override, len(s.MsgTypes))
		for mt, o := range s.MsgTypes {
			if o.Content != nil {
				c := *o.Content
				o.Content = &c
			}
			if o.Frequency != nil {
				f := *o.Frequency
				o.Frequency = &f
			}
			m[mt] = o
		}
		s.MsgTypes = m
	}
	r := &resolved{settings: s, byType: make(map[push.MsgType]rules)}
	r.def = rules{
		contentNum:    s.Content.Num,
		contentWindow: time.Duration(s.Content.Time) * time.Second,
		frequencyNum:  s.Frequency.Num,
	}
	for _, mt := range push.MsgTypes() {
		ru := r.def
		if o, ok := s.MsgTypes[mt]; ok {
			if o.Content != nil {
				ru.contentNum, ru.contentWindow = o.Content.Num, time.Duration(o.Content.Time)*time.Second
			}
			if o.Frequency != nil {
				ru.frequencyNum = o.Frequency.Num
			}
		}
		if slices.Contains(s.FrequencyExempt, mt) {
			ru.frequencyNum = 0
		}
		r.byType[mt] = ru
	}
	return r
}

// For returns the rules of message type mt; an unknown type gets the top level.
func (r *resolved) For(mt push.MsgType) rules {
	if ru, ok := r.byType[mt]; ok {
		return ru
	}
	return r.def
}
