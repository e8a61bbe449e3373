package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	orderv1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/order/v1"
)

// BenchmarkGetWaybillGRPC measures an order-centre lookup over real gRPC on
// SQLite with no injected latency: the sandbox's own cost per hub call.
func BenchmarkGetWaybillGRPC(b *testing.B) {
	e := newSQLiteEnv(b, Config{})
	no := e.createWaybill(b, "SGFM01", "SGLM01", nil)
	oc := orderv1.NewOrderServiceClient(e.conn)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := oc.GetWaybill(ctx, &orderv1.GetWaybillRequest{WaybillNo: no}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCreateWaybillHTTP measures POST /sandbox/v1/waybills on SQLite.
func BenchmarkCreateWaybillHTTP(b *testing.B) {
	e := newSQLiteEnv(b, Config{})
	raw, err := json.Marshal(validWaybill("SGFM01", "MYLM03"))
	require.NoError(b, err)
	client := e.http.Client()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := client.Post(e.http.URL+"/sandbox/v1/waybills", "application/json", bytes.NewReader(raw))
		require.NoError(b, err)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
