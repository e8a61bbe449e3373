package label

import "testing"

func BenchmarkRender(b *testing.B) {
	l := fixtures()["parcel"]
	for _, f := range []string{FormatZPL, FormatPDF, FormatPNG} {
		if _, _, err := Render(l, f); err != nil { // warm the parsed-font caches
			b.Fatal(err)
		}
		b.Run(f, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Render(l, f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
