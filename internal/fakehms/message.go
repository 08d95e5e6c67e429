package fakehms

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"unicode/utf8"
)

// The limits the fake enforces.
const (
	// MaxPayload is the most bytes a message may have, its tokens not counted (documented:
	// 4096 bytes, else 80300008).
	MaxPayload = 4096
	// MaxTokens is the most tokens one request may carry (documented for v2; the fake applies
	// it to v3 as well).
	MaxTokens = 1000
	// MaxTTL is the longest pushOptions.ttl, 15 days; the default is one day.
	MaxTTL     = 1296000
	DefaultTTL = 86400
	// MaxTitle and MaxBody bound a notification's title and body in characters. Push Kit does
	// not document them for v3; these are the fake's choice, generous enough for any notice.
	MaxTitle = 100
	MaxBody  = 1000
	// MaxTokenLen bounds a token's length; see tokenShape.
	MaxTokenLen = 512
)

// sendRequest is the v3 body for push-type 0 (Alert), as far as the fake reads it.
type sendRequest struct {
	Payload struct {
		Notification *Notification `json:"notification"`
	} `json:"payload"`
	Target struct {
		Token []string `json:"token"`
	} `json:"target"`
	PushOptions struct {
		TTL         *int `json:"ttl"`
		TestMessage bool `json:"testMessage"`
	} `json:"pushOptions"`
}

func (r sendRequest) ttl() int {
	if r.PushOptions.TTL == nil {
		return DefaultTTL
	}
	return *r.PushOptions.TTL
}

// Notification is payload.notification of an Alert message.
type Notification struct {
	Category    string          `json:"category,omitempty"`
	Title       string          `json:"title"`
	Body        string          `json:"body"`
	ClickAction *ClickAction    `json:"clickAction"`
	NotifyID    *int64          `json:"notifyId,omitempty"`
	Badge       json.RawMessage `json:"badge,omitempty"`
	Style       *int            `json:"style,omitempty"`
	Image       string          `json:"image,omitempty"`
}

// ClickAction is what tapping the notification does: actionType 0 opens the app's home page,
// 1 the page named by action (a skill's action) or uri; data is handed to the app.
type ClickAction struct {
	ActionType *int           `json:"actionType"`
	Action     string         `json:"action,omitempty"`
	URI        string         `json:"uri,omitempty"`
	Data       map[string]any `json:"data,omitempty"`
}

// judge reads and checks the request: push-type, JSON, size, tokens' count, the notification's
// fields and category.
func (s *Server) judge(pushType string, body []byte) (sendRequest, *refusal) {
	var req sendRequest
	switch pushType {
	case "0":
	case "":
		return req, paramError("push-type header is missing")
	case "1", "2", "6", "7", "10":
		return req, paramError("push-type " + pushType + " is not served by the fake")
	default:
		return req, paramError("push-type " + pushType + " is invalid")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil || dec.More() {
		return req, illegal("the body is not a JSON object of the message structure")
	}
	n := len(req.Target.Token)
	if n == 0 || n > MaxTokens {
		return req, &refusal{status: http.StatusBadRequest, code: CodeTokenCount, msg: fmt.Sprintf("The number of tokens is %d, not 1 to %d", n, MaxTokens)}
	}
	size := len(body)
	for _, t := range req.Target.Token {
		size -= len(t)
	}
	if size > MaxPayload {
		return req, TooLarge().refusal()
	}
	nt := req.Payload.Notification
	if nt == nil {
		return req, illegal("payload.notification is required for push-type 0")
	}
	switch c := nt.Category; {
	case c == "" || c == "MARKETING":
		// No category is MARKETING: Push Kit files an unclassified notification as 资讯营销.
		if !s.allowMarketing {
			return req, illegal("category MARKETING is refused by this server (WithMarketing allows it)")
		}
	case !s.categories[c]:
		return req, illegal("category " + c + " is not a self-classification right of the project")
	}
	if nt.Title == "" || nt.Body == "" {
		return req, illegal("notification title and body are required")
	}
	if utf8.RuneCountInString(nt.Title) > MaxTitle || utf8.RuneCountInString(nt.Body) > MaxBody {
		return req, illegal(fmt.Sprintf("title is at most %d characters and body %d", MaxTitle, MaxBody))
	}
	ca := nt.ClickAction
	if ca == nil || ca.ActionType == nil {
		return req, illegal("clickAction.actionType is required")
	}
	switch *ca.ActionType {
	case 0:
	case 1:
		if ca.Action == "" && ca.URI == "" {
			return req, illegal("clickAction with actionType 1 needs action or uri")
		}
	default:
		return req, illegal("clickAction.actionType is 0 or 1")
	}
	if nt.NotifyID != nil && (*nt.NotifyID < 0 || *nt.NotifyID > 1<<31-1) {
		return req, illegal("notifyId is a non-negative int32")
	}
	if ttl := req.PushOptions.TTL; ttl != nil && (*ttl < 1 || *ttl > MaxTTL) {
		return req, illegal(fmt.Sprintf("ttl is 1 to %d seconds", MaxTTL))
	}
	return req, nil
}

// tokenShape is what the fake takes for a Push Kit token: 16 to MaxTokenLen characters of
// letters, digits and the base64 and URL-safe punctuation. Real tokens are opaque strings well
// over 100 characters; the fake is lenient so tests can use readable ones.
func tokenShape(t string) bool {
	if len(t) < 16 || len(t) > MaxTokenLen {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '+' || c == '/' || c == '=' || c == '-' || c == '_' || c == '.' || c == ':':
		default:
			return false
		}
	}
	return true
}

func paramError(msg string) *refusal {
	return &refusal{status: http.StatusBadRequest, code: CodeParamError, msg: "Check Parameter Error, " + msg}
}

func illegal(msg string) *refusal {
	return &refusal{status: http.StatusBadRequest, code: CodeIllegalPayload, msg: "Illegal payload, " + msg}
}
