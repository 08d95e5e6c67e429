package apns

import (
	"bytes"
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/sideshow/apns2"

	"github.com/tongban/tongban/push/channel"
)

const (
	// maxPayload is APNs' limit for an alert notification's payload.
	maxPayload = 4096
	// maxCollapseID is APNs' limit for apns-collapse-id, in bytes.
	maxCollapseID = 64
	// expiry is how long APNs keeps a notification for a device that is offline, as FCM's TTL
	// for the same notices: after three days a notice is better read in the inbox.
	expiry = 72 * time.Hour
)

// payload is the JSON APNs delivers to the app: the alert iOS shows, and beside aps what the
// app needs to open the notice. notification_id is in every message so an app can drop the
// rare duplicate a retry after a lost answer makes.
type payload struct {
	Aps            aps    `json:"aps"`
	NotificationID string `json:"notification_id"`
	Service        string `json:"service"`
	Category       string `json:"category,omitempty"`
	Link           string `json:"link,omitempty"`
}

type aps struct {
	Alert    alert  `json:"alert"`
	Sound    string `json:"sound"`
	ThreadID string `json:"thread-id,omitempty"` // groups a category's notices on the lock screen
}

type alert struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
}

// notification builds the push of one notice for one device.
func notification(n channel.Note, token, topic string, now time.Time) *apns2.Notification {
	return &apns2.Notification{
		DeviceToken: token,
		Topic:       topic,
		PushType:    apns2.PushTypeAlert,
		Priority:    apns2.PriorityHigh,
		Expiration:  now.Add(expiry),
		// A retried notice replaces, rather than joins, the one the device may already show.
		CollapseID: cut(n.ID, maxCollapseID),
		Payload:    encodePayload(n),
	}
}

// encodePayload marshals the payload and, when it is over APNs' 4096 bytes, shortens the body
// (then the title) until it fits: a notice too long for the lock screen is still worth its
// alert, and the app shows it whole from the inbox. APNs would refuse the whole push instead
// (413 PayloadTooLarge), for good.
func encodePayload(n channel.Note) []byte {
	p := payload{
		Aps:            aps{Alert: alert{Title: n.Title, Body: n.Body}, Sound: "default", ThreadID: n.Category},
		NotificationID: n.ID,
		Service:        n.Service,
		Category:       n.Category,
		Link:           n.Link,
	}
	b := marshal(p)
	// Each pass removes at least the excess: a raw byte takes at least one byte of JSON.
	for pass := 0; len(b) > maxPayload && pass < 4; pass++ {
		excess := len(b) - maxPayload + len("…")
		if a := &p.Aps.Alert; len(a.Body) > 0 {
			a.Body = shorten(a.Body, excess)
		} else if len(a.Title) > 0 {
			a.Title = shorten(a.Title, excess)
		} else {
			break // the rest is ids and a link: let APNs say PayloadTooLarge
		}
		b = marshal(p)
	}
	return b
}

// shorten drops at least n bytes from the end of s, on a rune boundary, and marks the cut.
func shorten(s string, n int) string {
	if n >= len(s) {
		return ""
	}
	return cut(s, len(s)-n) + "…"
}

func marshal(p payload) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // "<" as itself, not \u003c: fewer bytes of the 4096
	if err := enc.Encode(p); err != nil {
		// Only strings are encoded: this cannot happen.
		panic("apns: encoding payload: " + err.Error())
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// cut returns the longest prefix of s of at most n bytes that ends on a rune boundary, so a
// multi-byte character is never split into invalid UTF-8.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
