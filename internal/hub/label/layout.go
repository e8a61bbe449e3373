package label

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/code128"
	"github.com/boombuler/barcode/qr"
)

// The label is laid out once in printer dots (203 dpi: 8 dots per mm) on a
// 100 × 150 mm page; every format draws the same layout, so what the PNG
// preview shows is what the printer and the PDF show.
const (
	pageW = 800
	pageH = 1200
	dpi   = 203.2

	marginX   = 32
	contentW  = pageW - 2*marginX
	barcodeH  = 170
	barcodeY  = 345
	maxBarW   = 640 // leaves ≥ 10 modules of quiet zone on each side
	maxModule = 4
	qrBox     = 200
	qrX       = pageW - marginX - qrBox
	qrY       = 972
)

// layout is the label as primitives: filled black boxes, text lines made of
// font runs, a Code128 symbol and a QR symbol.
type layout struct {
	boxes []box
	texts []textLine
	code  symbol
	qr    symbol
}

// box is a filled black rectangle in dots.
type box struct{ x, y, w, h float64 }

// textLine is one line of text: x is where the line starts, y its baseline,
// size its em size, all in dots. inverse draws white on a black box.
type textLine struct {
	x, y    float64
	size    float64
	runs    []run
	inverse bool
}

// symbol is a barcode as a grid of modules (true = black). x, y is its top
// left corner and module the side of one module, in dots.
type symbol struct {
	data          string
	x, y          int
	module        int
	width, height int      // in modules
	dark          [][]bool // [row][col]; a 1D symbol has a single row
	barHeight     int      // in dots, for a 1D symbol
}

type align int

const (
	left align = iota
	center
	right
)

type builder struct {
	m   *measurer
	lay layout
}

func buildLayout(l Label) (*layout, error) {
	if err := validate(l); err != nil {
		return nil, err
	}
	m, err := newMeasurer()
	if err != nil {
		return nil, err
	}
	b := &builder{m: m}
	if err := b.barcodes(l); err != nil {
		return nil, err
	}
	b.frame()
	b.header(l)
	b.sortBlock(l)
	b.text(pageW/2, 556, 34, bold, l.Barcode, center, contentW, false)
	b.party("TO", l.To, 602, 36, 30, 38, 4)
	b.lay.boxes = append(b.lay.boxes, box{16, 818, pageW - 32, 3})
	b.party("FROM", l.From, 846, 26, 24, 30, 2)
	b.lay.boxes = append(b.lay.boxes, box{16, 960, pageW - 32, 3})
	y := 1000.0
	for _, line := range b.wrapAll(l.Lines, regular, 26, qrX-marginX-16, 5) {
		b.text(marginX, y, 26, regular, line, left, qrX-marginX-16, false)
		y += 34
	}
	return &b.lay, nil
}

func (b *builder) frame() {
	const t = 3
	b.lay.boxes = append(b.lay.boxes,
		box{16, 16, pageW - 32, t}, box{16, pageH - 16 - t, pageW - 32, t},
		box{16, 16, t, pageH - 32}, box{pageW - 16 - t, 16, t, pageH - 32},
		box{16, 136, pageW - 32, t}, box{16, 320, pageW - 32, t}, box{16, 572, pageW - 32, t},
	)
}

func (b *builder) header(l Label) {
	title := clean(l.Title)
	if title == "" {
		title = strings.ToUpper(l.Kind)
	}
	b.text(marginX, 80, 48, bold, title, left, 510, false)
	sub := strings.ToUpper(l.Kind)
	if !l.CreatedAt.IsZero() {
		sub += "   " + l.CreatedAt.Format("2006-01-02 15:04 MST")
	}
	b.text(marginX, 120, 24, regular, sub, left, 510, false)
	if svc := clean(l.ServiceCode); svc != "" {
		b.lay.boxes = append(b.lay.boxes, box{560, 16, pageW - 16 - 560, 120})
		b.text(560+(pageW-16-560)/2, 100, 60, bold, svc, center, 200, true)
	}
}

func (b *builder) sortBlock(l Label) {
	b.lay.boxes = append(b.lay.boxes, box{16, 139, 384, 181})
	b.text(marginX, 172, 24, regular, "CHUTE", left, 360, true)
	b.text(16+192, 295, 110, bold, clean(l.Chute), center, 360, true)
	b.text(420, 172, 24, regular, "NEXT HOP", left, 348, false)
	b.text(420, 245, 64, bold, clean(l.NextHop), left, 348, false)
	if l.WeightGrams > 0 {
		b.text(420, 298, 30, regular, formatWeight(l.WeightGrams), left, 348, false)
	}
}

// party draws a TO or FROM block starting at baseline y.
func (b *builder) party(caption string, p Party, y, nameSize, addrSize, lineH float64, maxLines int) {
	b.text(marginX, y, 22, regular, caption, left, 120, false)
	if st := clean(p.Station); st != "" {
		b.text(pageW-marginX, y, 26, bold, st, right, contentW-140, false)
	}
	y += nameSize + 6
	name := strings.TrimSpace(clean(p.Name) + "   " + clean(p.Phone))
	b.text(marginX, y, nameSize, bold, name, left, contentW, false)
	y += lineH + 4
	for _, line := range b.wrap(clean(p.Address), regular, addrSize, contentW, maxLines) {
		b.text(marginX, y, addrSize, regular, line, left, contentW, false)
		y += lineH
	}
}

// text places one line. A line wider than maxW is first shrunk (to no less
// than 70% of size) and then cut with an ellipsis.
func (b *builder) text(x, y, size float64, st style, s string, a align, maxW float64, inverse bool) {
	if s == "" {
		return
	}
	w := b.m.width(st, s, size)
	if w > maxW {
		size = max(size*0.7, size*maxW/w)
		s = b.ellipsize(st, s, size, maxW)
	}
	runs, w := b.m.runs(st, s, size)
	switch a {
	case center:
		x -= w / 2
	case right:
		x -= w
	}
	b.lay.texts = append(b.lay.texts, textLine{x: x, y: y, size: size, runs: runs, inverse: inverse})
}

func (b *builder) ellipsize(st style, s string, size, maxW float64) string {
	if b.m.width(st, s, size) <= maxW {
		return s
	}
	rs := []rune(s)
	for n := len(rs) - 1; n > 0; n-- {
		cut := strings.TrimSpace(string(rs[:n])) + "…"
		if !isMark(rs[n]) && b.m.width(st, cut, size) <= maxW {
			return cut
		}
	}
	return "…"
}

// wrap breaks s into at most maxLines lines no wider than maxW, at spaces
// where it can, else between characters (Chinese and Thai write words
// without spaces) but never before a combining mark. What does not fit ends
// the last line with an ellipsis.
func (b *builder) wrap(s string, st style, size, maxW float64, maxLines int) []string {
	rs := []rune(s)
	var lines []string
	for len(rs) > 0 && len(lines) < maxLines {
		n, w := 0, 0.0
		for n < len(rs) {
			w += b.m.width(st, string(rs[n]), size)
			if w > maxW && n > 0 {
				break
			}
			n++
		}
		if n < len(rs) {
			if sp := lastSpace(rs[:n+1]); sp > 0 {
				n = sp
			} else {
				for n > 1 && isMark(rs[n]) {
					n--
				}
			}
		}
		if len(lines) == maxLines-1 && n < len(rs) {
			lines = append(lines, b.ellipsize(st, string(rs), size, maxW))
			return lines
		}
		lines = append(lines, strings.TrimSpace(string(rs[:n])))
		rs = []rune(strings.TrimLeftFunc(string(rs[n:]), unicode.IsSpace))
	}
	return lines
}

func (b *builder) wrapAll(items []string, st style, size, maxW float64, maxLines int) []string {
	var out []string
	for _, it := range items {
		if it = clean(it); it == "" {
			continue
		}
		out = append(out, b.wrap(it, st, size, maxW, maxLines-len(out))...)
		if len(out) >= maxLines {
			break
		}
	}
	return out
}

func (b *builder) barcodes(l Label) error {
	c, err := code128.Encode(l.Barcode)
	if err != nil {
		return fmt.Errorf("%w: code128 %q: %w", ErrInvalidLabel, l.Barcode, err)
	}
	code := toSymbol(c, l.Barcode)
	code.module = min(maxModule, maxBarW/code.width)
	if code.module < 2 {
		return fmt.Errorf("%w: barcode %q too long for the label", ErrInvalidLabel, l.Barcode)
	}
	code.x = (pageW - code.width*code.module) / 2
	code.y = barcodeY
	code.barHeight = barcodeH
	b.lay.code = code

	payload := QRPayload(l)
	q, err := qr.Encode(payload, qr.M, qr.Auto)
	if err != nil {
		return fmt.Errorf("%w: qr: %w", ErrInvalidLabel, err)
	}
	sym := toSymbol(q, payload)
	sym.module = min(10, qrBox/sym.width)
	sym.x = qrX + (qrBox-sym.width*sym.module)/2
	sym.y = qrY + (qrBox-sym.height*sym.module)/2
	b.lay.qr = sym
	return nil
}

func toSymbol(c barcode.Barcode, data string) symbol {
	r := c.Bounds()
	s := symbol{data: data, width: r.Dx(), height: r.Dy()}
	s.dark = make([][]bool, s.height)
	for y := range s.height {
		s.dark[y] = make([]bool, s.width)
		for x := range s.width {
			cr, _, _, _ := c.At(r.Min.X+x, r.Min.Y+y).RGBA()
			s.dark[y][x] = cr < 0x8000
		}
	}
	return s
}

func formatWeight(g int) string {
	return strconv.Itoa(g/1000) + "." + fmt.Sprintf("%03d", g%1000) + " kg"
}

func lastSpace(rs []rune) int {
	for i := len(rs) - 1; i > 0; i-- {
		if unicode.IsSpace(rs[i]) {
			return i
		}
	}
	return 0
}

func isMark(r rune) bool { return unicode.In(r, unicode.Mn, unicode.Mc, unicode.Me) }
