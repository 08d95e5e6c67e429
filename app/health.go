package app

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// readinessTimeout bounds the readiness checks, so a hung Redis makes the probe fail rather than
// hang past the orchestrator's own timeout. The checks run side by side under it, and the
// store's client honours the context's deadline (redisx), so the probe answers within it
// whatever Redis does.
const readinessTimeout = time.Second

// check is one condition readiness depends on. Later capabilities add theirs (signing keys
// loaded, providers discovered).
type check struct {
	name string
	run  func(ctx context.Context) error
}

type health struct {
	draining atomic.Bool
	checks   []check
	// degraded names what is missing without making the replica unready: an identity provider
	// that is down affects sign-in with one app on every replica alike, so taking replicas out
	// of the load balancer for it would turn one app's outage into everyone's.
	degraded func() map[string]any
}

func (h *health) live(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
}

// ready fails while the process is draining, so a load balancer stops sending new requests
// before the listener closes, and while any check fails.
func (h *health) ready(w http.ResponseWriter, r *http.Request) {
	if problems := h.problems(r.Context()); problems != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "problems": problems})
		return
	}
	body := map[string]any{"status": "ready"}
	if h.degraded != nil {
		if d := h.degraded(); len(d) > 0 {
			body["status"], body["degraded"] = "degraded", d
		}
	}
	writeJSON(w, http.StatusOK, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// problems runs the checks side by side under one readinessTimeout and names what fails; nil
// when the replica is ready.
func (h *health) problems(ctx context.Context) map[string]string {
	problems := map[string]string{}
	if h.draining.Load() {
		problems["server"] = "shutting down"
	}
	ctx, cancel := context.WithTimeout(ctx, readinessTimeout)
	defer cancel()
	failed := make([]bool, len(h.checks))
	var wg sync.WaitGroup
	for i, c := range h.checks {
		wg.Go(func() { failed[i] = c.run(ctx) != nil })
	}
	wg.Wait()
	for i, c := range h.checks {
		if failed[i] {
			problems[c.name] = "not answering"
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return problems
}
