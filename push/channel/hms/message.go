package hms

import (
	"encoding/json"
	"hash/fnv"

	"github.com/tongban/tongban/push/channel"
)

// The v3 Alert message (push-type 0) as we send it. Only the fields we set are declared.
type sendBody struct {
	Payload     payload     `json:"payload"`
	Target      target      `json:"target"`
	PushOptions pushOptions `json:"pushOptions"`
}

type payload struct {
	Notification notification `json:"notification"`
}

type notification struct {
	Category    string      `json:"category"`
	Title       string      `json:"title"`
	Body        string      `json:"body"`
	ClickAction clickAction `json:"clickAction"`
	// NotifyID is the notification's id on the device: a second message with the same id
	// replaces the first instead of showing twice, so a rare duplicate send collapses.
	NotifyID int64 `json:"notifyId"`
}

type clickAction struct {
	ActionType int               `json:"actionType"` // 0: the app's home page; 1: action
	Action     string            `json:"action,omitempty"`
	Data       map[string]string `json:"data"`
}

type target struct {
	Token []string `json:"token"`
}

type pushOptions struct {
	TTL         int  `json:"ttl"`
	TestMessage bool `json:"testMessage,omitempty"`
}

// The keys of clickAction.data the app reads to open the notice: the notification's id (also
// how it drops a duplicate it already showed) and its link.
const (
	DataNotificationID = "notificationId"
	DataLink           = "link"
	DataService        = "serviceId"
)

// body encodes one message for one token.
func (s *Sender) body(m channel.Message) ([]byte, error) {
	data := map[string]string{DataNotificationID: m.Note.ID}
	if m.Note.Link != "" {
		data[DataLink] = m.Note.Link
	}
	if m.Note.Service != "" {
		data[DataService] = m.Note.Service
	}
	ca := clickAction{ActionType: 0, Data: data}
	if s.opts.NoticeAction != "" {
		ca.ActionType, ca.Action = 1, s.opts.NoticeAction
	}
	return json.Marshal(sendBody{
		Payload: payload{Notification: notification{
			Category:    s.opts.Category,
			Title:       m.Note.Title,
			Body:        m.Note.Body,
			ClickAction: ca,
			NotifyID:    notifyID(m.Note.ID),
		}},
		Target:      target{Token: []string{m.To.Address}},
		PushOptions: pushOptions{TTL: int(s.opts.TTL.Seconds()), TestMessage: s.opts.TestMessage},
	})
}

// notifyID folds the notification id into a non-negative int32, the range notifyId takes.
func notifyID(id string) int64 {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int64(h.Sum32() & 0x7fffffff)
}
