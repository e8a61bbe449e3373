// Package label owns the hub's shipping labels: one 100 × 150 mm label model
// (parcel or container) laid out once at 203 dpi and rendered from that one
// layout to ZPL II for thermal printers, to PDF with embedded fonts, and to
// PNG for previews. Barcodes are Code128 (the parcel or container number)
// and QR (the number plus its sort data).
package label

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Kinds of label.
const (
	KindParcel    = "parcel"
	KindContainer = "container"
)

// Formats Render accepts.
const (
	FormatZPL = "zpl"
	FormatPDF = "pdf"
	FormatPNG = "png"
)

// Content types Render answers with.
const (
	ContentTypeZPL = "application/zpl; charset=utf-8"
	ContentTypePDF = "application/pdf"
	ContentTypePNG = "image/png"
)

// MaxBarcodeLen bounds the Code128 payload so the symbol fits the label
// with a module of at least 2 dots (0.25 mm), which scanners read reliably.
const MaxBarcodeLen = 40

var (
	// ErrUnknownFormat is returned for a format other than zpl, pdf or png.
	ErrUnknownFormat = errors.New("unknown label format")
	// ErrInvalidLabel is returned when the label cannot be drawn as given,
	// e.g. an empty or non-ASCII barcode or an unknown kind.
	ErrInvalidLabel = errors.New("invalid label")
)

// Label is everything printed on a parcel or container label.
type Label struct {
	// Kind is KindParcel or KindContainer.
	Kind string
	// Barcode is the waybill or container number, encoded as Code128.
	Barcode string
	// Title heads the label; empty means the kind in capitals.
	Title       string
	From, To    Party
	Lines       []string
	ServiceCode string
	Chute       string
	NextHop     string
	WeightGrams int
	CreatedAt   time.Time
}

// Party is a sender or receiver (for a container: a station).
type Party struct {
	Name, Phone, Address, Station string
}

// Render draws l in format ("zpl", "pdf" or "png") and returns the document
// and its content type.
func Render(l Label, format string) (body []byte, contentType string, err error) {
	var draw func(*layout) ([]byte, error)
	switch format {
	case FormatZPL:
		draw, contentType = renderZPL, ContentTypeZPL
	case FormatPDF:
		draw, contentType = renderPDF, ContentTypePDF
	case FormatPNG:
		draw, contentType = renderPNG, ContentTypePNG
	default:
		return nil, "", fmt.Errorf("render label %q: %w", format, ErrUnknownFormat)
	}
	lay, err := buildLayout(l)
	if err != nil {
		return nil, "", fmt.Errorf("render %s label %s: %w", format, l.Barcode, err)
	}
	body, err = draw(lay)
	if err != nil {
		return nil, "", fmt.Errorf("render %s label %s: %w", format, l.Barcode, err)
	}
	return body, contentType, nil
}

// QRPayload is the text the label's QR code carries: the number followed by
// the sort data a hand scanner may show without a lookup.
func QRPayload(l Label) string {
	var b strings.Builder
	b.WriteString("WP1|")
	b.WriteString(l.Kind)
	b.WriteString("|")
	b.WriteString(l.Barcode)
	for _, kv := range [][2]string{
		{"svc", l.ServiceCode}, {"chute", l.Chute}, {"next", l.NextHop}, {"to", l.To.Station},
	} {
		if v := clean(kv[1]); v != "" {
			b.WriteString("|" + kv[0] + "=" + v)
		}
	}
	return b.String()
}

func validate(l Label) error {
	if l.Kind != KindParcel && l.Kind != KindContainer {
		return fmt.Errorf("%w: kind %q is neither %s nor %s", ErrInvalidLabel, l.Kind, KindParcel, KindContainer)
	}
	if l.Barcode == "" {
		return fmt.Errorf("%w: empty barcode", ErrInvalidLabel)
	}
	if len(l.Barcode) > MaxBarcodeLen {
		return fmt.Errorf("%w: barcode longer than %d characters", ErrInvalidLabel, MaxBarcodeLen)
	}
	for _, r := range l.Barcode {
		// Printable ASCII only: Code128 can carry control characters, but a
		// scanner keyboard-wedge would type them into whatever has focus.
		if r < 0x21 || r > 0x7e {
			return fmt.Errorf("%w: barcode %q has a character outside printable ASCII", ErrInvalidLabel, l.Barcode)
		}
	}
	if l.WeightGrams < 0 {
		return fmt.Errorf("%w: negative weight", ErrInvalidLabel)
	}
	return nil
}

// clean puts text in NFC (so Vietnamese letters are single precomposed
// runes the fonts have glyphs for) and turns control characters, which no
// format can print, into spaces.
func clean(s string) string {
	s = norm.NFC.String(s)
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}
