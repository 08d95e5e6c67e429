package fakeapns

import (
	"encoding/json"
	"net/http"
	"time"
)

// refusal is one of APNs' error answers: the status and {"reason": …}, with "timestamp" for
// 410, or a raw body a scripted proxy answers.
type refusal struct {
	status    int
	reason    string
	timestamp time.Time
	raw       *rawAnswer
}

func refuse(status int, reason string) *refusal { return &refusal{status: status, reason: reason} }

func (e *refusal) write(w http.ResponseWriter) {
	if e.raw != nil {
		if e.raw.contentType != "" {
			w.Header().Set("Content-Type", e.raw.contentType)
		}
		w.WriteHeader(e.status)
		w.Write([]byte(e.raw.body))
		return
	}
	body := struct {
		Reason    string `json:"reason"`
		Timestamp int64  `json:"timestamp,omitempty"`
	}{Reason: e.reason}
	if e.status == http.StatusGone {
		// Milliseconds since the epoch; APNs gives it with every 410.
		body.Timestamp = e.timestamp.UnixMilli()
	}
	writeJSON(w, e.status, body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only our own types reach here; failing to encode them is a bug, not bad input.
		http.Error(w, "fakeapns: encoding response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	w.Write(append(body, '\n'))
}
