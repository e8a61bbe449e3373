package label

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// renderPNG draws the layout one pixel per printer dot (800 × 1200 at
// 203 dpi) in grey levels, with the same fonts as the PDF.
func renderPNG(lay *layout) ([]byte, error) {
	img, err := rasterize(lay)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encode png: %w", err)
	}
	return buf.Bytes(), nil
}

func rasterize(lay *layout) (*image.Gray, error) {
	fonts, err := parsedFonts()
	if err != nil {
		return nil, err
	}
	img := image.NewGray(image.Rect(0, 0, pageW, pageH))
	fill(img, img.Bounds(), 0xff)
	for _, b := range lay.boxes {
		fill(img, image.Rect(dots(b.x), dots(b.y), dots(b.x+b.w), dots(b.y+b.h)), 0)
	}

	// A face holds a glyph cache and is not safe for concurrent use, so
	// faces live for one rendering.
	type faceKey struct {
		f    fontID
		size float64
	}
	faces := map[faceKey]font.Face{}
	defer func() {
		for _, f := range faces {
			_ = f.Close()
		}
	}()
	for _, t := range lay.texts {
		src := image.Black
		if t.inverse {
			src = image.White
		}
		for _, r := range t.runs {
			k := faceKey{r.font, t.size}
			face, ok := faces[k]
			if !ok {
				face, err = opentype.NewFace(fonts[r.font], &opentype.FaceOptions{
					Size: t.size, DPI: 72, Hinting: font.HintingNone,
				})
				if err != nil {
					return nil, fmt.Errorf("font face %s: %w", fontFiles[r.font].name, err)
				}
				faces[k] = face
			}
			d := font.Drawer{
				Dst:  img,
				Src:  src,
				Face: face,
				Dot:  fixed.Point26_6{X: fixed.Int26_6(math.Round((t.x + r.x) * 64)), Y: fixed.Int26_6(math.Round(t.y * 64))},
			}
			d.DrawString(r.text)
		}
	}
	drawSymbol(img, lay.code)
	drawSymbol(img, lay.qr)
	return img, nil
}

func drawSymbol(img *image.Gray, s symbol) {
	for row := range s.height {
		for col := range s.width {
			if !s.dark[row][col] {
				continue
			}
			x0 := s.x + col*s.module
			y0 := s.y + row*s.module
			y1 := y0 + s.module
			if s.height == 1 {
				y1 = y0 + s.barHeight
			}
			fill(img, image.Rect(x0, y0, x0+s.module, y1), 0)
		}
	}
}

// fill sets a rectangle to one grey level. image/draw has no fast path for
// a Gray destination and would go through colour conversion per pixel.
func fill(img *image.Gray, r image.Rectangle, v uint8) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		row := img.Pix[img.PixOffset(r.Min.X, y):img.PixOffset(r.Max.X, y)]
		for i := range row {
			row[i] = v
		}
	}
}
