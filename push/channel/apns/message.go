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
// (then the title) as little as makes it fit: a notice too long for the lock screen is still
// worth its alert, and the app shows it whole from the inbox. APNs would refuse the whole push
// instead (413 PayloadTooLarge), for good.
func encodePayload(n channel.Note) []byte {
	p := payload{
		Aps:            aps{Alert: alert{Title: n.Title, Body: n.Body}, Sound: "default", ThreadID: n.Category},
		NotificationID: n.ID,
		Service:        n.Service,
		Category:       n.Category,
		Link:           n.Link,
	}
	b := marshal(p)
	if len(b) <= maxPayload {
		return b
	}
	for _, field := range []*string{&p.Aps.Alert.Body, &p.Aps.Alert.Title} {
		if b, ok := shortenToFit(&p, field); ok {
			return b
		}
	}
	return marshal(p) // the rest is ids and a link: let APNs say PayloadTooLarge
}

// shortenToFit finds the longest prefix of *field (cut on a rune boundary, marked "…") with
// which p fits in maxPayload, by bisection: JSON escaping makes a byte of text cost one to six
// bytes of payload, so the length cannot simply be computed. With none, *field is left empty.
func shortenToFit(p *payload, field *string) ([]byte, bool) {
	whole := *field
	lo, hi := 0, len(whole)-1 // lo: fits or is 0; hi+1: known not to fit (the whole text)
	var best []byte
	for lo <= hi {
		mid := (lo + hi) / 2
		*field = shorten(whole, mid)
		if b := marshal(*p); len(b) <= maxPayload {
			best, lo = b, mid+1
		} else {
			hi = mid - 1
		}
	}
	if best == nil {
		*field = ""
		return nil, false
	}
	*field = shorten(whole, lo-1)
	return best, true
}

// shorten keeps at most n bytes of s, cut on a rune boundary, and marks the cut; "" for 0.
func shorten(s string, n int) string {
	if n <= 0 {
		return ""
	}
	return cut(s, n) + "…"
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
