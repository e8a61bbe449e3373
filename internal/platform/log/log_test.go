package log

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNew(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, "warn", "json")
	require.NoError(t, err)
	l.Info("hidden")
	l.Warn("shown", "k", 1)
	var rec map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &rec))
	require.Equal(t, "shown", rec["msg"])
	require.EqualValues(t, 1, rec["k"])

	buf.Reset()
	l, err = New(&buf, "debug", "text")
	require.NoError(t, err)
	l.Debug("hello")
	require.Contains(t, buf.String(), "msg=hello")

	_, err = New(&buf, "loud", "text")
	require.ErrorContains(t, err, `log level "loud"`)
	_, err = New(&buf, "info", "xml")
	require.ErrorContains(t, err, `log format "xml"`)
}

func TestOrDiscard(t *testing.T) {
	OrDiscard(nil).Error("dropped")
	l, _ := New(&bytes.Buffer{}, "info", "text")
	require.Same(t, l, OrDiscard(l))
}
