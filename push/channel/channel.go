package channel

import (
	"context"
	"fmt"
	"time"
)

// Kind is a way to reach people, and the "channel" label of delivery's metrics.
type Kind string

// The kinds of endpoint. Devices are FCM, APNs and HMS; subscriptions are WeChat and Alipay.
const (
	FCM    Kind = "fcm"
	APNs   Kind = "apns"
	HMS    Kind = "hms"
	WeChat Kind = "wechat"
	Alipay Kind = "alipay"
)

// Kinds lists every kind in the order delivery sends them.
var Kinds = [...]Kind{FCM, APNs, HMS, WeChat, Alipay}

// Valid reports whether k is one of Kinds.
func (k Kind) Valid() bool {
	for _, v := range Kinds {
		if v == k {
			return true
		}
	}
	return false
}

// Subscription reports whether k is a mini-program subscription rather than a device.
func (k Kind) Subscription() bool { return k == WeChat || k == Alipay }

// Note is what a channel sends of a notification. Every field is the notification's, already
// in the person's inbox; a sender maps them onto its vendor's message or template.
type Note struct {
	ID      string
	Service string // the service's id
	// ServiceName is the service's name as people read it (服务名称), for templates that show it.
	ServiceName string
	Title       string
	Body        string
	Link        string // the notice's page in the app; may be empty
	Category    string
	// AndroidChannel is the slug of the category's Android notification channel.
	AndroidChannel string
	Created        time.Time
}

// Endpoint is one place a notification can go.
type Endpoint struct {
	// ID is stable for one endpoint and unique among a person's: the device id, or the
	// subscription's id. Delivery records each notification's outcome per ID.
	ID   string
	Kind Kind
	App  string // the member app the endpoint belongs to
	// Address is the device token, the WeChat openid or the Alipay user id. It is secret to
	// the sender: never logged, never in an error or a Result.
	Address string
	// Template is a subscription's template id; empty for devices.
	Template string
	// OneTime: a subscription that one sent message uses up.
	OneTime bool
}

// Message is one notification for one endpoint.
type Message struct {
	Note Note
	To   Endpoint
}

// Outcome is what one message's send came to.
type Outcome int

// The outcomes. Their String values are the "outcome" label of delivery's metrics.
const (
	Sent  Outcome = iota
	Drop          // the endpoint is gone for good (token unregistered, subscription refused)
	Fail          // the message is refused: retrying cannot help
	Retry         // not sent now; try again after Wait at the least
)

func (o Outcome) String() string {
	switch o {
	case Sent:
		return "sent"
	case Drop:
		return "token_dropped"
	case Fail:
		return "failed"
	case Retry:
		return "retry"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Result is a message's outcome as the vendor's answer gave it.
type Result struct {
	Outcome Outcome
	// Wait is the least time before a retry: the vendor's Retry-After or its quota window.
	Wait time.Duration
	// Reason is the vendor's code or status ("UNREGISTERED", "43101", "BadDeviceToken",
	// "80300007", "transport"); empty when sent. Never an address or a token.
	Reason string
}

// Sender sends messages of one Kind.
type Sender interface {
	Kind() Kind
	// Batch is the most messages one Send takes; delivery records outcomes after each call,
	// so it is also the most messages a worker's crash can leave to be sent twice.
	Batch() int
	// Send sends each message (its To.Kind is Kind()) and answers one Result per message, in
	// their order. It sends concurrently as its vendor allows, gives up when ctx ends, and
	// returns Retry for a message it could not get through.
	Send(ctx context.Context, msgs []Message) []Result
}

// Registrar turns a mini-program login code into the person's id with the platform: the WeChat
// openid (code2Session) or the Alipay user id (alipay.system.oauth.token). An id a client
// sends is never trusted; only the platform's answer to the code is.
type Registrar interface {
	Kind() Kind
	// Exchange answers the user's id for app's mini-program. A code the platform refuses is an
	// *InputError; a platform that cannot be reached is another error.
	Exchange(ctx context.Context, app, code string) (string, error)
}

// Templates says which subscription template carries a category's notices in an app's
// mini-program.
type Templates interface {
	// Template answers the template id for app and category, false when none is configured.
	Template(app, category string) (string, bool)
}

// InputError is a refusal the caller can fix (a login code the platform refused, an unknown
// app): what is wrong, never an address.
type InputError struct {
	Field   string
	Message string
}

func (e *InputError) Error() string { return e.Field + ": " + e.Message }
