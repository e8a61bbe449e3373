package label

import (
	"bytes"
	"fmt"
	"math"
)

// renderZPL writes the layout as one ZPL II label. Text fields use ^CI28
// (UTF-8) and the scalable TrueType fonts this package embeds, referenced by
// their names on the printer's E: drive (PrinterFonts); each font run is its
// own field placed with ^FT at its baseline, so the printer, holding the
// same font files, puts every glyph where the PDF and PNG do.
func renderZPL(lay *layout) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("^XA\n^CI28\n")
	fmt.Fprintf(&b, "^PW%d\n^LL%d\n^LH0,0\n", pageW, pageH)
	for _, bx := range lay.boxes {
		w, h := dots(bx.w), dots(bx.h)
		fmt.Fprintf(&b, "^FO%d,%d^GB%d,%d,%d,B,0^FS\n", dots(bx.x), dots(bx.y), w, h, min(w, h))
	}
	for _, t := range lay.texts {
		size := dots(t.size)
		for _, r := range t.runs {
			// ^FR prints the field reversed, white where the box beneath is black.
			reverse := ""
			if t.inverse {
				reverse = "^FR"
			}
			fmt.Fprintf(&b, "^FT%d,%d^A@N,%d,%d,%s%s^FH^FD%s^FS\n",
				dots(t.x+r.x), dots(t.y), size, size, fontFiles[r.font].zplName, reverse, zplEscape(r.text))
		}
	}
	c := lay.code
	// ^BY sets the narrow module width; ^BC mode A lets the printer choose
	// the Code128 subsets (digits pairwise in subset C), as the library does
	// for the PDF and PNG. No interpretation line: the layout prints its own.
	fmt.Fprintf(&b, "^FO%d,%d^BY%d,3,%d^BCN,%d,N,N,N,A^FH^FD%s^FS\n",
		c.x, c.y, c.module, c.barHeight, c.barHeight, zplEscape(c.data))
	q := lay.qr
	// ^BQ model 2; the data starts with error correction M and automatic
	// input mode ("MA,").
	fmt.Fprintf(&b, "^FO%d,%d^BQN,2,%d^FH^FDMA,%s^FS\n", q.x, q.y, q.module, zplEscape(q.data))
	b.WriteString("^PQ1\n^XZ\n")
	return b.Bytes(), nil
}

// zplEscape hex-escapes the characters that would end or start a command
// inside ^FD; ^FH makes the printer read "_5E" as "^".
func zplEscape(s string) string {
	var b bytes.Buffer
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '^', '~', '_':
			fmt.Fprintf(&b, "_%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func dots(v float64) int { return int(math.Round(v)) }
