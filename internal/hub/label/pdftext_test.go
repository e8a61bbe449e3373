package label

import (
	"bytes"
	"compress/zlib"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// pdfText reads the text layer of a PDF written by this package: it maps
// each font resource to its ToUnicode CMap and decodes the glyph ids of
// every TJ in the content streams. It understands just the subset of PDF
// that the writer produces, which is enough to prove that the addresses are
// in the document as text, not only as pixels.
func pdfText(t *testing.T, pdf []byte) string {
	t.Helper()
	objs := map[int][]byte{}
	for _, m := range regexp.MustCompile(`(?s)(\d+) 0 obj(.*?)endobj`).FindAllSubmatch(pdf, -1) {
		n, err := strconv.Atoi(string(m[1]))
		require.NoError(t, err)
		objs[n] = m[2]
	}
	stream := func(body []byte) []byte {
		i := bytes.Index(body, []byte("stream\n"))
		j := bytes.LastIndex(body, []byte("endstream"))
		if i < 0 || j < i {
			return nil
		}
		data := body[i+len("stream\n") : j]
		if !bytes.Contains(body[:i], []byte("FlateDecode")) {
			return data
		}
		zr, err := zlib.NewReader(bytes.NewReader(data))
		require.NoError(t, err)
		out, err := io.ReadAll(zr)
		require.NoError(t, err)
		return out
	}
	ref := func(body []byte, key string) int {
		m := regexp.MustCompile(key + ` (\d+) 0 R`).FindSubmatch(body)
		if m == nil {
			return -1
		}
		n, _ := strconv.Atoi(string(m[1]))
		return n
	}
	hex := func(s string) int {
		v, err := strconv.ParseUint(s, 16, 32)
		require.NoError(t, err)
		return int(v)
	}

	cmaps := map[string]map[int]rune{} // font resource name → glyph → rune
	for _, body := range objs {
		for _, m := range regexp.MustCompile(`/(F\d+) (\d+) 0 R`).FindAllSubmatch(body, -1) {
			fontObj, _ := strconv.Atoi(string(m[2]))
			tu := ref(objs[fontObj], "/ToUnicode")
			if tu < 0 {
				continue
			}
			cm := map[int]rune{}
			for _, r := range regexp.MustCompile(`<([0-9A-F]+)><([0-9A-F]+)><([0-9A-F]+)>`).FindAllStringSubmatch(string(stream(objs[tu])), -1) {
				lo, hi, u := hex(r[1]), hex(r[2]), hex(r[3])
				for g := lo; g <= hi; g++ {
					cm[g] = rune(u + g - lo)
				}
			}
			cmaps[string(m[1])] = cm
		}
	}
	require.NotEmpty(t, cmaps, "no font with a ToUnicode map")

	var out strings.Builder
	for _, body := range objs {
		content := stream(body)
		if !bytes.Contains(content, []byte(" TJ")) {
			continue
		}
		var cur map[int]rune
		lastY := ""
		// Runs of one line share their baseline: a new y starts a new line.
		tokens := regexp.MustCompile(`[\d.]+ ([\d.]+) TD|/(F\d+) [\d.]+ Tf|\[<([0-9A-F]*)>\] TJ`)
		for _, m := range tokens.FindAllStringSubmatch(string(content), -1) {
			switch {
			case m[1] != "":
				if m[1] != lastY {
					out.WriteString("\n")
				}
				lastY = m[1]
			case m[2] != "":
				cur = cmaps[m[2]]
			default:
				for i := 0; i+4 <= len(m[3]); i += 4 {
					out.WriteRune(cur[hex(m[3][i:i+4])])
				}
			}
		}
	}
	return out.String()
}
