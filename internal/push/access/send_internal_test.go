package access

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/push"
)

func TestResponseEncodingMatchesEncodingJSON(t *testing.T) {
	for _, r := range []SendResponse{
		{},
		{Messages: []MessageResult{}},
		{Messages: []MessageResult{
			{MessageID: "m1", BusinessID: "2000000120260301", Receivers: []string{"a@x.io", "<b>&\"c\""}},
			{MessageID: "m2", BusinessID: "b", Receivers: []string{}, Invalid: []InvalidReceiver{{"bad", "not an email address"}, {"\xff", "x"}}},
			{MessageID: "m3"},
		}},
	} {
		want, err := json.Marshal(r)
		require.NoError(t, err)
		require.Equal(t, string(want), string(r.appendJSON(nil)))
	}
}

func TestAssembleTracesAMessageAsOneReceiverSet(t *testing.T) {
	tpl := push.Template{ID: 4, Channel: push.ChannelEmail, MsgType: push.MsgNotice, Kind: push.KindRealtime,
		TimeZone: "UTC", Status: push.StatusApproved, Content: push.Content{Subject: "s", Body: "b"}}
	comp, err := Compile(tpl)
	require.NoError(t, err)
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	h := &Handler{now: func() time.Time { return at }, ids: newIDGen(func() time.Time { return at })}
	h.metrics, err = newMetrics(nil)
	require.NoError(t, err)
	req := &SendRequest{TemplateID: 4, Messages: []MessageRequest{{Receivers: []string{"a@x.io", "bad", "b@x.io", "c@x.io", "a@x.io"}}}}
	resp, tasks, trace, err := h.assemble(comp, req, make([]Rendered, 1))
	require.NoError(t, err)
	require.Len(t, tasks, 1)
	require.Len(t, trace, 2, "one invalid_receiver anchor and one set of the three accepted receivers")
	var anchors []push.Anchor
	for _, it := range trace {
		as, err := push.DecodeAnchors(it.value)
		require.NoError(t, err)
		anchors = append(anchors, as...)
	}
	id := resp.Messages[0].MessageID
	base := push.Anchor{MessageID: id, BusinessID: "2000000420260301", At: at, State: push.StateReceived}
	want := []push.Anchor{base, base, base, base}
	want[0].State, want[0].Receiver, want[0].EventID, want[0].Detail = push.StateInvalidReceiver, "bad", id+".invalid_receiver.1", "not an email address"
	for i, r := range []string{"a@x.io", "b@x.io", "c@x.io"} {
		want[i+1].Receiver, want[i+1].EventID = r, id+".received."+string(rune('0'+i))
	}
	require.Equal(t, want, anchors)
}
