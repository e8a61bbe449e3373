package label

import (
	_ "embed"
	"fmt"
	"sync"
	"unicode"

	"golang.org/x/image/font"
	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"
)

// The fonts ship inside the binary so a label renders the same on every
// machine; fonts/README.md says where each file comes from and how it was
// subset, and its licence lies beside it.
var (
	//go:embed fonts/NotoSans-Regular.ttf
	notoSansRegular []byte
	//go:embed fonts/NotoSans-Bold.ttf
	notoSansBold []byte
	//go:embed fonts/NotoSansThai-Regular.ttf
	notoThaiRegular []byte
	//go:embed fonts/NotoSansThai-Bold.ttf
	notoThaiBold []byte
	//go:embed fonts/DroidSansFallbackFull.ttf
	droidFallback []byte
)

// fontID names one embedded font file.
type fontID int

const (
	fontSans fontID = iota
	fontSansBold
	fontThai
	fontThaiBold
	fontCJK
	numFonts
)

// fontFile describes an embedded font: its data, the family name used in the
// PDF, and the file name it must have on a Zebra printer's E: drive.
type fontFile struct {
	name    string
	data    []byte
	zplName string
}

var fontFiles = [numFonts]fontFile{
	fontSans:     {name: "NotoSans", data: notoSansRegular, zplName: "E:NOTOSANS.TTF"},
	fontSansBold: {name: "NotoSansBold", data: notoSansBold, zplName: "E:NOTOSANB.TTF"},
	fontThai:     {name: "NotoSansThai", data: notoThaiRegular, zplName: "E:NOTOTHAI.TTF"},
	fontThaiBold: {name: "NotoSansThaiBold", data: notoThaiBold, zplName: "E:NOTOTHAB.TTF"},
	fontCJK:      {name: "DroidSansFallback", data: droidFallback, zplName: "E:DROIDSF.TTF"},
}

// style selects a fallback chain: the first font in the chain that has a
// glyph for a rune draws it.
type style int

const (
	regular style = iota
	bold
)

var chains = [...][]fontID{
	regular: {fontSans, fontThai, fontCJK},
	bold:    {fontSansBold, fontThaiBold, fontCJK},
}

// parsedFonts parses every embedded font once. sfnt.Font is safe for
// concurrent use as long as each goroutine brings its own sfnt.Buffer.
var parsedFonts = sync.OnceValues(func() ([numFonts]*sfnt.Font, error) {
	var out [numFonts]*sfnt.Font
	for i, f := range fontFiles {
		p, err := sfnt.Parse(f.data)
		if err != nil {
			return out, fmt.Errorf("parse embedded font %s: %w", f.name, err)
		}
		out[i] = p
	}
	return out, nil
})

// FontFile is an embedded font as a printer needs it: the ZPL this package
// writes refers to each font by Name on the printer's E: drive.
type FontFile struct {
	Name string
	Data []byte
}

// PrinterFonts returns the TrueType files that ZPL labels refer to, to be
// downloaded once to each printer (see docs/labels.md).
func PrinterFonts() []FontFile {
	out := make([]FontFile, 0, numFonts)
	for _, f := range fontFiles {
		out = append(out, FontFile{Name: f.zplName, Data: f.data})
	}
	return out
}

// run is a piece of one text line drawn with one font, x in dots from the
// start of the line.
type run struct {
	font fontID
	x    float64
	text string
}

// measurer picks fonts for runes and measures advances. It owns an
// sfnt.Buffer, so each render uses its own.
type measurer struct {
	fonts [numFonts]*sfnt.Font
	buf   sfnt.Buffer
}

func newMeasurer() (*measurer, error) {
	fonts, err := parsedFonts()
	if err != nil {
		return nil, err
	}
	return &measurer{fonts: fonts}, nil
}

// glyph returns the rune's glyph index in font f; 0 means "not covered".
func (m *measurer) glyph(f fontID, r rune) sfnt.GlyphIndex {
	gi, err := m.fonts[f].GlyphIndex(&m.buf, r)
	if err != nil {
		return 0
	}
	return gi
}

// pick chooses the font for r. A combining mark stays with the previous
// font when that font has it, so a base letter and its marks are drawn by
// one font and the mark sits on its base; so do spaces and punctuation
// shared by all scripts, which keeps a Thai or Chinese phrase in one run.
func (m *measurer) pick(st style, r rune, prev fontID, havePrev bool) (fontID, bool) {
	if havePrev && (unicode.In(r, unicode.Mn, unicode.Me) || unicode.Is(unicode.Common, r) && !unicode.IsDigit(r)) &&
		m.glyph(prev, r) != 0 {
		return prev, true
	}
	for _, f := range chains[st] {
		if m.glyph(f, r) != 0 {
			return f, true
		}
	}
	return 0, false
}

// advance is the width in dots of text s in font f at size dots per em.
func (m *measurer) advance(f fontID, s string, size float64) float64 {
	ppem := fixed.Int26_6(size * 64)
	var w fixed.Int26_6
	for _, r := range s {
		gi := m.glyph(f, r)
		a, err := m.fonts[f].GlyphAdvance(&m.buf, gi, ppem, font.HintingNone)
		if err != nil {
			continue
		}
		w += a
	}
	return float64(w) / 64
}

// runs splits s into font runs and returns them with the total width. A
// rune that no font covers becomes "?" so the label never silently drops
// part of an address.
func (m *measurer) runs(st style, s string, size float64) ([]run, float64) {
	var out []run
	var cur []rune
	var curFont fontID
	have := false
	x := 0.0
	flush := func() {
		if len(cur) == 0 {
			return
		}
		text := string(cur)
		out = append(out, run{font: curFont, x: x, text: text})
		x += m.advance(curFont, text, size)
		cur = cur[:0]
	}
	for _, r := range s {
		f, ok := m.pick(st, r, curFont, have)
		if !ok {
			r = '?'
			f, _ = m.pick(st, r, curFont, false)
		}
		if have && f != curFont {
			flush()
		}
		curFont, have = f, true
		cur = append(cur, r)
	}
	flush()
	return out, x
}

// width is the drawn width of s in dots.
func (m *measurer) width(st style, s string, size float64) float64 {
	_, w := m.runs(st, s, size)
	return w
}
