package fakefcm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// MaxPayload is the most bytes the message object may take as compact JSON. FCM's own limit of
// 4096 bytes counts only the payload (data and notification); counting the whole message,
// token and platform blocks included, makes the fake the stricter of the two, so what it
// accepts FCM accepts too.
const MaxPayload = 4096

const minTokenLen, maxTokenLen = 32, 4096

// Message is the FCM v1 message as the fake understood it. Platform blocks are kept as the
// caller sent them; Raw is the whole message object, compacted.
type Message struct {
	Token        string            `json:"token,omitempty"`
	Topic        string            `json:"topic,omitempty"`
	Condition    string            `json:"condition,omitempty"`
	Notification *Notification     `json:"notification,omitempty"`
	Data         map[string]string `json:"data,omitempty"`
	Android      json.RawMessage   `json:"android,omitempty"`
	APNS         json.RawMessage   `json:"apns,omitempty"`
	Webpush      json.RawMessage   `json:"webpush,omitempty"`
	FCMOptions   json.RawMessage   `json:"fcmOptions,omitempty"`
	Raw          json.RawMessage   `json:"-"`
}

// Notification is the message's cross-platform notification block.
type Notification struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
	Image string `json:"image,omitempty"`
}

// sendRequest is the body of messages:send.
type sendRequest struct {
	validateOnly bool
	message      Message
}

var (
	// A registration token as FCM issues it: "<instance id>:APA91b…", base64url and colons,
	// some 150–200 characters. The length bounds (minTokenLen, maxTokenLen) are loose on
	// purpose; the alphabet is not.
	tokenPattern = regexp.MustCompile(`^[A-Za-z0-9_:-]+$`)
	// The topic alphabet of FCM's documentation and of the Admin SDKs.
	topicPattern = regexp.MustCompile(`^[a-zA-Z0-9-_.~%]{1,900}$`)
)

// Field names as Google's JSON mapping takes them: proto names and lowerCamel both.
var (
	requestFields      = fieldSet("validate_only", "validateOnly", "message")
	messageFields      = fieldSet("name", "data", "notification", "android", "webpush", "apns", "fcm_options", "fcmOptions", "token", "topic", "condition")
	notificationFields = fieldSet("title", "body", "image")
)

func fieldSet(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// parseSend decodes and checks a messages:send body the way FCM does: first the schema (what
// Google's front end rejects, no FcmError), then the message (FcmError INVALID_ARGUMENT). The
// token is filled in as far as parsing got, so refused attempts still name their target.
func parseSend(body []byte) (sendRequest, *apiError) {
	var req sendRequest
	top, e := object(body, "", "SendMessageRequest", requestFields)
	if e != nil {
		return req, e
	}
	for _, name := range []string{"validate_only", "validateOnly"} {
		if raw, ok := top[name]; ok && !isNull(raw) {
			if err := json.Unmarshal(raw, &req.validateOnly); err != nil {
				return req, badJSON(name, fmt.Sprintf("Invalid value at '%s' (TYPE_BOOL), %s", name, excerpt(raw)))
			}
		}
	}
	raw := top["message"]
	if isNull(raw) {
		raw = json.RawMessage("{}")
	}
	if e := parseMessage(raw, &req.message); e != nil {
		return req, e
	}
	return req, checkMessage(&req.message)
}

func parseMessage(raw json.RawMessage, m *Message) *apiError {
	fields, e := object(raw, "message", "Message", messageFields)
	if e != nil {
		return e
	}
	m.Raw = compactJSON(raw)

	var targets []string
	for _, t := range []struct {
		name string
		dst  *string
	}{{"token", &m.Token}, {"topic", &m.Topic}, {"condition", &m.Condition}} {
		v, ok := fields[t.name]
		if !ok || isNull(v) {
			continue
		}
		if *t.dst, e = str(v, "message."+t.name); e != nil {
			return e
		}
		targets = append(targets, t.name)
	}
	if len(targets) > 1 {
		msg := fmt.Sprintf("Invalid value at 'message' (oneof), oneof field 'target' is already set. Cannot set '%s'", targets[1])
		return badJSON("message", msg)
	}
	if v, ok := fields["name"]; ok {
		if _, e := str(v, "message.name"); e != nil {
			return e
		}
	}
	if m.Data, e = data(fields["data"]); e != nil {
		return e
	}
	if m.Notification, e = notification(fields["notification"]); e != nil {
		return e
	}
	for _, b := range []struct {
		name, proto string
		dst         *json.RawMessage
	}{
		{"android", "AndroidConfig", &m.Android},
		{"apns", "ApnsConfig", &m.APNS},
		{"webpush", "WebpushConfig", &m.Webpush},
		{"fcm_options", "FcmOptions", &m.FCMOptions},
		{"fcmOptions", "FcmOptions", &m.FCMOptions},
	} {
		v, ok := fields[b.name]
		if !ok || isNull(v) {
			continue
		}
		if _, e := object(v, "message."+b.name, b.proto, nil); e != nil {
			return e
		}
		*b.dst = compactJSON(v)
	}
	return nil
}

// checkMessage is FCM's own validation, after the schema fits.
func checkMessage(m *Message) *apiError {
	switch {
	case m.Token == "" && m.Topic == "" && m.Condition == "":
		return invalidArgument("message", "Recipient of the message is not set.")
	case m.Token != "" && !wellFormedToken(m.Token):
		return invalidArgument("message.token", "The registration token is not a valid FCM registration token")
	case m.Topic != "" && !topicPattern.MatchString(m.Topic):
		return invalidArgument("message.topic", "Topic name is not valid.")
	case len(m.Raw) > MaxPayload:
		return invalidArgument("message", "Message is too big")
	}
	return nil
}

func wellFormedToken(t string) bool {
	return len(t) >= minTokenLen && len(t) <= maxTokenLen && tokenPattern.MatchString(t)
}

func notification(raw json.RawMessage) (*Notification, *apiError) {
	if isNull(raw) {
		return nil, nil
	}
	fields, e := object(raw, "message.notification", "Notification", notificationFields)
	if e != nil {
		return nil, e
	}
	var n Notification
	for _, f := range []struct {
		name string
		dst  *string
	}{{"title", &n.Title}, {"body", &n.Body}, {"image", &n.Image}} {
		if v, ok := fields[f.name]; ok {
			if *f.dst, e = str(v, "message.notification."+f.name); e != nil {
				return nil, e
			}
		}
	}
	return &n, nil
}

// data decodes message.data in document order, so a bad value is named by its index as
// Google names it ("message.data[2].value").
func data(raw json.RawMessage) (map[string]string, *apiError) {
	if isNull(raw) {
		return nil, nil
	}
	if _, e := object(raw, "message.data", "DataEntry", nil); e != nil {
		return nil, e
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // the opening brace, checked by object
		return nil, badJSON("message.data", "Invalid JSON payload received. "+err.Error())
	}
	m := make(map[string]string)
	for i := 0; dec.More(); i++ {
		key, err := dec.Token()
		if err != nil {
			return nil, badJSON("message.data", "Invalid JSON payload received. "+err.Error())
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, badJSON("message.data", "Invalid JSON payload received. "+err.Error())
		}
		field := fmt.Sprintf("message.data[%d].value", i)
		var s string
		if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &s) != nil {
			return nil, badJSON(field, fmt.Sprintf("Invalid value at '%s' (TYPE_STRING), %s", field, excerpt(v)))
		}
		m[key.(string)] = s
	}
	return m, nil
}

// object decodes raw as a JSON object. With known non-nil, a key outside it is refused as
// Google refuses unknown names.
func object(raw []byte, path, proto string, known map[string]bool) (map[string]json.RawMessage, *apiError) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		if !json.Valid(trimmed) {
			return nil, badJSON(path, invalidPayload(raw))
		}
		msg := fmt.Sprintf("Invalid value at '%s' (type.googleapis.com/google.firebase.fcm.v1.%s), %s", path, proto, excerpt(trimmed))
		if path == "" {
			msg = "Invalid JSON payload received. Expected an object."
		}
		return nil, badJSON(path, msg)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &fields); err != nil {
		return nil, badJSON(path, invalidPayload(raw))
	}
	for name := range fields {
		if known != nil && !known[name] {
			at := ""
			if path != "" {
				at = fmt.Sprintf(" at '%s'", path)
			}
			return nil, badJSON(path, fmt.Sprintf("Invalid JSON payload received. Unknown name %q%s: Cannot find field.", name, at))
		}
	}
	return fields, nil
}

func invalidPayload(raw []byte) string {
	var v any
	err := json.Unmarshal(raw, &v)
	if err == nil {
		return "Invalid JSON payload received."
	}
	return "Invalid JSON payload received. " + err.Error()
}

func str(raw json.RawMessage, path string) (string, *apiError) {
	var s string
	if isNull(raw) {
		return "", nil
	}
	if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", badJSON(path, fmt.Sprintf("Invalid value at '%s' (TYPE_STRING), %s", path, excerpt(raw)))
	}
	return s, nil
}

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

func compactJSON(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}

// excerpt quotes a rejected value the way Google's messages do, cut short.
func excerpt(raw []byte) string {
	s := strings.TrimSpace(string(raw))
	if len(s) > 64 {
		s = strings.ToValidUTF8(s[:64], "") + "…"
	}
	return s
}
