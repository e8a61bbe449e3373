package label

import (
	"bytes"
	"errors"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/oned"
	"github.com/makiuchi-d/gozxing/qrcode"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	vnParty = Party{
		Name: "Nguyễn Văn Hùng", Phone: "+84 90 123 4567", Station: "VN-HCM-FM1",
		Address: "12 Đường Lê Lợi, Phường Bến Nghé, Quận 1, Thành phố Hồ Chí Minh",
	}
	cnParty = Party{
		Name: "张伟", Phone: "+86 138 0013 8000", Station: "CN-SHA-LM3",
		Address: "上海市浦东新区张江高科技园区碧波路690号 3号楼 5楼 501室",
	}
	thParty = Party{
		Name: "สมชาย ใจดี", Phone: "+66 81 234 5678", Station: "TH-BKK-SC1",
		Address: "99/1 ถนนสุขุมวิท แขวงคลองเตย เขตคลองเตย กรุงเทพมหานคร 10110",
	}
)

// fixtures are a parcel and a container label, between them carrying
// Chinese, Thai and Vietnamese in every text block.
func fixtures() map[string]Label {
	at := time.Date(2026, 3, 4, 15, 4, 0, 0, time.UTC)
	return map[string]Label{
		"parcel": {
			Kind: KindParcel, Barcode: "SPX0123456789012", Title: "WAYPOST EXPRESS",
			From: vnParty, To: cnParty,
			Lines:       []string{"Hàng dễ vỡ — 易碎品 — ระวังแตก", "COD 120.000 ₫"},
			ServiceCode: "STD", Chute: "A12", NextHop: "CN-SHA-SC1", WeightGrams: 1250, CreatedAt: at,
		},
		"container": {
			Kind: KindContainer, Barcode: "BAG-TH-000042", Title: "BAG ถุง 袋",
			From: cnParty, To: thParty,
			Lines:       []string{"42 parcels / พัสดุ 42 ชิ้น", "Seal 7781-22 · Chuyến hàng Hồ Chí Minh - Bangkok"},
			ServiceCode: "EXP", Chute: "7", NextHop: "TH-BKK-SC1", WeightGrams: 18040, CreatedAt: at,
		},
	}
}

// fragments are pieces of text each label must carry in its text layer:
// its sort data and some Chinese, Thai and Vietnamese.
func fragments(l Label) []string {
	out := []string{l.Barcode, l.NextHop, l.Chute, l.To.Station, l.From.Station, "张伟", "上海市浦东新区"}
	if l.Kind == KindParcel {
		return append(out, "Nguyễn Văn Hùng", "Đường Lê Lợi", "ระวังแตก", "易碎品")
	}
	return append(out, "สมชาย ใจดี", "ถนนสุขุมวิท แขวงคลองเตย", "Chuyến hàng Hồ Chí Minh", "ถุง 袋")
}

func TestRenderZPL(t *testing.T) {
	for name, l := range fixtures() {
		t.Run(name, func(t *testing.T) {
			body, ct, err := Render(l, FormatZPL)
			require.NoError(t, err)
			require.Equal(t, ContentTypeZPL, ct)
			zpl := string(body)
			require.True(t, strings.HasPrefix(zpl, "^XA\n^CI28\n"), "starts with ^XA then ^CI28")
			require.True(t, strings.HasSuffix(zpl, "^XZ\n"))
			require.Equal(t, 1, strings.Count(zpl, "^XA"))
			require.Regexp(t, `\^BY[2-4],3,170\^BCN,170,N,N,N,A\^FH\^FD`+regexp.QuoteMeta(l.Barcode)+`\^FS`, zpl)
			require.Contains(t, zpl, "^BQN,2,")
			require.Contains(t, zpl, "^FDMA,"+zplEscape(QRPayload(l))+"^FS")
			require.Contains(t, zpl, "^A@N,")
			require.Contains(t, zpl, "E:DROIDSF.TTF", "CJK runs use the CJK font")
			require.Contains(t, zpl, "E:NOTOTHAI.TTF", "Thai runs use the Thai font")
			require.Contains(t, zpl, "^FR", "inverse text on the chute box")

			// Join the text fields of each baseline back into lines.
			var text strings.Builder
			lastY := ""
			for _, m := range regexp.MustCompile(`\^FT\d+,(\d+)\^A@[^^]*(?:\^FR)?\^FH\^FD([^^]*)\^FS`).FindAllStringSubmatch(zpl, -1) {
				if m[1] != lastY {
					text.WriteString("\n")
				}
				lastY = m[1]
				text.WriteString(m[2])
			}
			for _, f := range fragments(l) {
				require.Contains(t, text.String(), zplEscape(f))
			}
		})
	}
}

func TestZPLEscape(t *testing.T) {
	require.Equal(t, "A_5EB_7EC_5FD ễ", zplEscape("A^B~C_D ễ"))
	body, _, err := Render(Label{Kind: KindParcel, Barcode: "AB^~_9", Chute: "^XZ"}, FormatZPL)
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(string(body), "^XZ"), "field data cannot end the label")
	require.Contains(t, string(body), "^FDAB_5E_7E_5F9^FS")
}

func TestRenderPDF(t *testing.T) {
	for name, l := range fixtures() {
		t.Run(name, func(t *testing.T) {
			body, ct, err := Render(l, FormatPDF)
			require.NoError(t, err)
			require.Equal(t, ContentTypePDF, ct)
			require.True(t, bytes.HasPrefix(body, []byte("%PDF-")))
			require.Contains(t, string(body[len(body)-16:]), "%%EOF")
			require.Contains(t, string(body), "/MediaBox [ 0 0 283.46 425.20 ]", "100 × 150 mm")
			require.GreaterOrEqual(t, strings.Count(string(body), "/FontFile2"), 3, "Latin, Thai and CJK fonts embedded")
			require.Less(t, len(body), 400_000, "fonts are subset, not embedded whole")

			text := pdfText(t, body)
			for _, f := range fragments(l) {
				require.Contains(t, text, f)
			}
			if name == "parcel" {
				require.Contains(t, text, "1.250 kg")
			}
		})
	}
}

// TestPDFToText cross-checks the text layer with poppler where it is
// installed; the Go reader in TestRenderPDF is the check that always runs.
func TestPDFToText(t *testing.T) {
	bin, err := exec.LookPath("pdftotext")
	if err != nil {
		t.Skip("pdftotext (poppler-utils) not installed; TestRenderPDF checks the text layer itself")
	}
	l := fixtures()["parcel"]
	body, _, err := Render(l, FormatPDF)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "label.pdf")
	require.NoError(t, os.WriteFile(path, body, 0o600))
	out, err := exec.Command(bin, "-enc", "UTF-8", path, "-").Output()
	require.NoError(t, err)
	for _, f := range fragments(l) {
		require.Contains(t, string(out), f)
	}
}

func TestRenderPNGDecodes(t *testing.T) {
	for name, l := range fixtures() {
		t.Run(name, func(t *testing.T) {
			body, ct, err := Render(l, FormatPNG)
			require.NoError(t, err)
			require.Equal(t, ContentTypePNG, ct)
			img, err := png.Decode(bytes.NewReader(body))
			require.NoError(t, err)
			require.Equal(t, image.Rect(0, 0, pageW, pageH), img.Bounds())

			bmp, err := gozxing.NewBinaryBitmapFromImage(img)
			require.NoError(t, err)
			hints := map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true}
			code, err := oned.NewCode128Reader().Decode(bmp, hints)
			require.NoError(t, err, "Code128 decodes")
			require.Equal(t, l.Barcode, code.GetText())

			q, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
			require.NoError(t, err, "QR decodes")
			require.Equal(t, QRPayload(l), q.GetText())
		})
	}
}

func TestRenderUnknownFormat(t *testing.T) {
	for _, f := range []string{"", "ZPL", "svg", "pdf "} {
		t.Run(f, func(t *testing.T) {
			body, ct, err := Render(fixtures()["parcel"], f)
			require.ErrorIs(t, err, ErrUnknownFormat)
			require.Nil(t, body)
			require.Empty(t, ct)
		})
	}
}

func TestRenderInvalidLabel(t *testing.T) {
	ok := fixtures()["parcel"]
	tests := map[string]func(*Label){
		"unknown kind":       func(l *Label) { l.Kind = "pallet" },
		"empty barcode":      func(l *Label) { l.Barcode = "" },
		"space in barcode":   func(l *Label) { l.Barcode = "SPX 1" },
		"non-ASCII barcode":  func(l *Label) { l.Barcode = "SPX单号1" },
		"barcode too long":   func(l *Label) { l.Barcode = strings.Repeat("A", MaxBarcodeLen+1) },
		"barcode too wide":   func(l *Label) { l.Barcode = strings.Repeat("a!", MaxBarcodeLen/2) },
		"negative weight":    func(l *Label) { l.WeightGrams = -1 },
		"control in barcode": func(l *Label) { l.Barcode = "SPX\n1" },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			l := ok
			mutate(&l)
			for _, f := range []string{FormatZPL, FormatPDF, FormatPNG} {
				_, _, err := Render(l, f)
				require.ErrorIs(t, err, ErrInvalidLabel, f)
				require.False(t, errors.Is(err, ErrUnknownFormat))
			}
		})
	}
}

// TestMinimalLabel: a label with only a kind and a number still renders
// in every format, with nothing but the number and the sort boxes on it.
func TestMinimalLabel(t *testing.T) {
	l := Label{Kind: KindContainer, Barcode: "C1"}
	for _, f := range []string{FormatZPL, FormatPDF, FormatPNG} {
		body, _, err := Render(l, f)
		require.NoError(t, err, f)
		require.NotEmpty(t, body, f)
	}
}

func TestWrap(t *testing.T) {
	m, err := newMeasurer()
	require.NoError(t, err)
	b := &builder{m: m}
	tests := map[string]struct {
		in       string
		maxLines int
	}{
		"vietnamese": {vnParty.Address, 4},
		"chinese":    {cnParty.Address + cnParty.Address, 4},
		"thai":       {thParty.Address + " " + thParty.Address, 4},
		"overflow":   {strings.Repeat("กรุงเทพมหานคร ", 30), 2},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			lines := b.wrap(clean(tt.in), regular, 30, 300, tt.maxLines)
			require.NotEmpty(t, lines)
			require.LessOrEqual(t, len(lines), tt.maxLines)
			for _, line := range lines {
				require.LessOrEqual(t, m.width(regular, line, 30), 300.0, line)
				require.False(t, isMark([]rune(line)[0]), "line starts with a combining mark: %q", line)
			}
			joined := strings.Join(lines, "")
			if strings.HasSuffix(joined, "…") {
				require.Equal(t, tt.maxLines, len(lines))
				return
			}
			require.Equal(t, strings.ReplaceAll(clean(tt.in), " ", ""), strings.ReplaceAll(joined, " ", ""))
		})
	}
}

func TestRunsPickFonts(t *testing.T) {
	m, err := newMeasurer()
	require.NoError(t, err)
	runs, w := m.runs(regular, "Quận 1 上海 ถนน \U0001F600", 30)
	require.Greater(t, w, 0.0)
	var got []fontID
	var text strings.Builder
	for _, r := range runs {
		got = append(got, r.font)
		text.WriteString(r.text)
	}
	require.Equal(t, []fontID{fontSans, fontCJK, fontThai, fontSans}, got, "spaces stay in the run before them")
	require.Equal(t, "Quận 1 上海 ถนน ?", text.String(), "an uncovered rune prints as ?")
}

func TestCleanNormalizes(t *testing.T) {
	decomposed := "Nguye\u0302\u0303n\tVa\u0306n"
	require.Equal(t, "Nguyễn Văn", clean(decomposed))
}

func TestPrinterFonts(t *testing.T) {
	fonts := PrinterFonts()
	require.Len(t, fonts, int(numFonts))
	for _, f := range fonts {
		require.Regexp(t, `^E:[A-Z0-9]{1,8}\.TTF$`, f.Name)
		require.NotEmpty(t, f.Data)
	}
}

// TestConcurrentRender shares the parsed fonts between goroutines; run
// with -race it proves each rendering keeps its own font state.
func TestConcurrentRender(t *testing.T) {
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := fixtures()[[]string{"parcel", "container"}[i%2]]
			_, _, err := Render(l, []string{FormatZPL, FormatPDF, FormatPNG}[i%3])
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}
