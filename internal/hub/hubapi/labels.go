package hubapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/hub/label"
	"github.com/waypost/waypost/internal/platform/httpx"
)

// labelFormat is the ?format= of a label request; PDF when absent.
func labelFormat(r *http.Request) string {
	if f := r.URL.Query().Get("format"); f != "" {
		return f
	}
	return "pdf"
}

func (a *API) writeLabel(w http.ResponseWriter, r *http.Request, l label.Label) {
	body, ctype, err := label.Render(l, labelFormat(r))
	switch {
	case errors.Is(err, label.ErrUnknownFormat):
		httpx.WriteError(w, http.StatusBadRequest, "unknown_format", "format must be pdf, zpl or png")
		return
	case errors.Is(err, label.ErrInvalidLabel):
		httpx.WriteError(w, http.StatusUnprocessableEntity, "invalid_label", err.Error())
		return
	case err != nil:
		a.writeErr(w, r, "label", err)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func (a *API) parcelLabel(w http.ResponseWriter, r *http.Request) {
	ctx, no := r.Context(), r.PathValue("waybill")
	if !hub.ValidBarcode(no) {
		a.writeErr(w, r, "label", hub.Refuse(hub.CodeMalformedBarcode, "%q is not a valid waybill number", no))
		return
	}
	wb, err := a.ops.Downstream().Waybill(ctx, no)
	if err != nil {
		a.writeErr(w, r, "label", err)
		return
	}
	l := label.Label{Kind: label.KindParcel, Barcode: wb.No, ServiceCode: wb.Service,
		WeightGrams: int(wb.WeightGrams), CreatedAt: wb.CreatedAt,
		From:  label.Party{Station: wb.Origin},
		To:    label.Party{Name: wb.Receiver.Name, Phone: wb.Receiver.Phone, Address: wb.Receiver.Address, Station: wb.Destination},
		Lines: []string{"type " + wb.Type}}
	if origin, err := a.ops.Downstream().Station(ctx, wb.Origin); err == nil {
		l.From.Name = origin.Name
	}
	if wb.CODAmount > 0 {
		l.Lines = append(l.Lines, fmt.Sprintf("COD %d %s", wb.CODAmount, wb.Currency))
	}
	if p, err := a.ops.Store().Parcel(ctx, no); err == nil {
		l.Chute, l.NextHop = p.Chute, p.NextHop
	}
	a.writeLabel(w, r, l)
}

func (a *API) containerLabel(w http.ResponseWriter, r *http.Request) {
	v, err := a.ops.Container(r.Context(), r.PathValue("id"))
	if err != nil {
		a.writeErr(w, r, "label", err)
		return
	}
	l := label.Label{Kind: label.KindContainer, Barcode: v.ID, Title: v.Kind, NextHop: v.Destination,
		CreatedAt: v.CreatedAt, From: label.Party{Station: v.Station}, To: label.Party{Station: v.Destination},
		Lines: []string{fmt.Sprintf("%d items, state %s", len(v.Items), v.State)}}
	if v.SealNumber != "" {
		l.Lines = append(l.Lines, "seal "+v.SealNumber)
	}
	a.writeLabel(w, r, l)
}
