package hubapi

import (
	"context"
	"net/http"

	"github.com/waypost/waypost/dag"
	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/hub/ops"
	"github.com/waypost/waypost/internal/platform/httpx"
)

func (a *API) inbound(w http.ResponseWriter, r *http.Request) {
	var sc ops.Scan
	if !a.decode(w, r, &sc, false) {
		return
	}
	res, err := a.ops.Inbound(r.Context(), sc)
	if err != nil {
		a.writeErr(w, r, hub.OpInbound, err)
		return
	}
	a.ok(w, hub.OpInbound, http.StatusOK, res)
}

// sortAnswer is a sort's answer, with how it was reached when asked
// (?explain=1).
type sortAnswer struct {
	ops.SortResult
	Explain *dag.Explain `json:"explain,omitempty"`
}

// sortRefusal is the answer to a sort that sends the parcel to the
// exception chute: the contract's error, plus where the parcel goes.
type sortRefusal struct {
	Error httpx.Error `json:"error"`
	ops.SortResult
	Explain *dag.Explain `json:"explain,omitempty"`
}

// explainError is a refusal or failure of an explained sort: the
// contract's error and the explain.
type explainError struct {
	Error   httpx.Error  `json:"error"`
	Explain *dag.Explain `json:"explain"`
}

func (a *API) sort(w http.ResponseWriter, r *http.Request) {
	var sc ops.Scan
	if !a.decode(w, r, &sc, false) {
		return
	}
	explain := r.URL.Query().Get("explain")
	res, ex, err := a.flows.Sort(r.Context(), sc, explain == "1" || explain == "true")
	if err != nil {
		ref, ok := hub.AsRefusal(err)
		switch {
		case ok && ref.Code == hub.CodeNoRule:
			a.metrics.ops.WithLabelValues(hub.OpSort, ref.Code).Inc()
			httpx.WriteJSON(w, StatusOf(ref.Code), sortRefusal{Error: httpx.Error{Code: ref.Code, Message: ref.Message},
				SortResult: res, Explain: ex})
		case ok && ex != nil:
			a.metrics.ops.WithLabelValues(hub.OpSort, ref.Code).Inc()
			httpx.WriteJSON(w, StatusOf(ref.Code), explainError{Error: httpx.Error{Code: ref.Code, Message: ref.Message},
				Explain: ex})
		default:
			a.writeErr(w, r, hub.OpSort, err)
		}
		return
	}
	a.ok(w, hub.OpSort, http.StatusOK, sortAnswer{SortResult: res, Explain: ex})
}

func (a *API) createContainer(w http.ResponseWriter, r *http.Request) {
	var req ops.NewContainer
	if !a.decode(w, r, &req, false) {
		return
	}
	c, err := a.ops.CreateContainer(r.Context(), req)
	if err != nil {
		a.writeErr(w, r, "create_container", err)
		return
	}
	a.ok(w, "create_container", http.StatusCreated, ops.NewContainerView(c))
}

func (a *API) getContainer(w http.ResponseWriter, r *http.Request) {
	v, err := a.ops.Container(r.Context(), r.PathValue("id"))
	if err != nil {
		a.writeErr(w, r, "get_container", err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, v)
}

func (a *API) addItem(w http.ResponseWriter, r *http.Request) {
	var req ops.AddItem
	if !a.decode(w, r, &req, false) {
		return
	}
	req.Container = r.PathValue("id")
	res, err := a.ops.Pack(r.Context(), req)
	if err != nil {
		a.writeErr(w, r, hub.OpPack, err)
		return
	}
	a.ok(w, hub.OpPack, http.StatusOK, res)
}

func (a *API) containerAction(op string, do func(context.Context, ops.Action) (ops.ContainerResult, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req ops.Action
		if !a.decode(w, r, &req, true) {
			return
		}
		req.Container = r.PathValue("id")
		res, err := do(r.Context(), req)
		if err != nil {
			a.writeErr(w, r, op, err)
			return
		}
		a.ok(w, op, http.StatusOK, res)
	}
}

func (a *API) handover(w http.ResponseWriter, r *http.Request) {
	var req ops.NewHandover
	if !a.decode(w, r, &req, false) {
		return
	}
	res, err := a.ops.Handover(r.Context(), req)
	if err != nil {
		a.writeErr(w, r, hub.OpHandover, err)
		return
	}
	a.ok(w, hub.OpHandover, http.StatusCreated, res)
}

func (a *API) getParcel(w http.ResponseWriter, r *http.Request) {
	v, err := a.ops.Parcel(r.Context(), r.PathValue("waybill"))
	if err != nil {
		a.writeErr(w, r, "get_parcel", err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, v)
}
