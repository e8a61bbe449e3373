package label

import (
	"fmt"
	"sync"

	"github.com/signintech/gopdf"
)

// ptPerDot turns layout dots into PDF points so the page is exactly
// 100 × 150 mm (800 × 1200 dots).
const ptPerDot = 100 / 25.4 * 72 / pageW

// pdfFonts parses the embedded fonts for the PDF writer once. Each document
// takes a copy and embeds only the glyphs it uses (gopdf subsets on write),
// so a label with a few Chinese characters does not carry the 4 MB CJK font.
var pdfFonts = sync.OnceValues(func() (*gopdf.FontContainer, error) {
	fc := &gopdf.FontContainer{}
	for _, f := range fontFiles {
		if err := fc.AddTTFFontData(f.name, f.data); err != nil {
			return nil, fmt.Errorf("load pdf font %s: %w", f.name, err)
		}
	}
	return fc, nil
})

// renderPDF draws the layout on one 100 × 150 mm page. Barcodes are vector
// rectangles, so they stay sharp at any printer resolution.
func renderPDF(lay *layout) ([]byte, error) {
	fc, err := pdfFonts()
	if err != nil {
		return nil, err
	}
	gp := &gopdf.GoPdf{}
	gp.Start(gopdf.Config{Unit: gopdf.UnitPT, PageSize: gopdf.Rect{W: pageW * ptPerDot, H: pageH * ptPerDot}})
	gp.SetInfo(gopdf.PdfInfo{Title: lay.code.data, Creator: "waypost hub label"})
	gp.AddPage()

	var used [numFonts]bool
	for _, t := range lay.texts {
		for _, r := range t.runs {
			if !used[r.font] {
				if err := gp.AddTTFFontFromFontContainer(fontFiles[r.font].name, fc); err != nil {
					return nil, fmt.Errorf("add pdf font %s: %w", fontFiles[r.font].name, err)
				}
				used[r.font] = true
			}
		}
	}

	gp.SetFillColor(0, 0, 0)
	for _, b := range lay.boxes {
		gp.RectFromUpperLeftWithStyle(b.x*ptPerDot, b.y*ptPerDot, b.w*ptPerDot, b.h*ptPerDot, "F")
	}
	for _, t := range lay.texts {
		if t.inverse {
			gp.SetTextColor(255, 255, 255)
		} else {
			gp.SetTextColor(0, 0, 0)
		}
		for _, r := range t.runs {
			if err := gp.SetFont(fontFiles[r.font].name, "", t.size*ptPerDot); err != nil {
				return nil, fmt.Errorf("pdf font %s: %w", fontFiles[r.font].name, err)
			}
			gp.SetXY((t.x+r.x)*ptPerDot, t.y*ptPerDot)
			if err := gp.Text(r.text); err != nil {
				return nil, fmt.Errorf("pdf text: %w", err)
			}
		}
	}
	pdfSymbol(gp, lay.code)
	pdfSymbol(gp, lay.qr)
	out, err := gp.GetBytesPdfReturnErr()
	if err != nil {
		return nil, fmt.Errorf("write pdf: %w", err)
	}
	return out, nil
}

// pdfSymbol draws a barcode as one rectangle per run of dark modules.
func pdfSymbol(gp *gopdf.GoPdf, s symbol) {
	for row := range s.height {
		for col := 0; col < s.width; {
			if !s.dark[row][col] {
				col++
				continue
			}
			end := col
			for end < s.width && s.dark[row][end] {
				end++
			}
			x := float64(s.x + col*s.module)
			y := float64(s.y + row*s.module)
			h := float64(s.module)
			if s.height == 1 {
				h = float64(s.barHeight)
			}
			gp.RectFromUpperLeftWithStyle(x*ptPerDot, y*ptPerDot, float64((end-col)*s.module)*ptPerDot, h*ptPerDot, "F")
			col = end
		}
	}
}
