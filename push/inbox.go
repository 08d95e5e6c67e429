package push

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/push/catalog"
	"github.com/tongban/tongban/push/delivery"
)

// Notifications returns the person's inbox, newest first: at most the inbox cap, none older
// than its TTL, none of a rule that notifies by push only. The inbox is small by
// construction, so callers page over it in memory.
func (e *Engine) Notifications(ctx context.Context, pid string, unreadOnly bool) ([]Notification, error) {
	fields, err := e.store.Client.HGetAll(ctx, e.inboxKey(pid)).Result()
	if err != nil {
		return nil, fmt.Errorf("push: read inbox: %w", err)
	}
	since := e.now().Add(-e.opts.InboxTTL)
	var out []Notification
	for id, blob := range fields {
		if strings.HasPrefix(id, readPrefix) {
			continue
		}
		var n Notification
		if err := json.Unmarshal([]byte(blob), &n); err != nil {
			return nil, fmt.Errorf("push: corrupt notification %s: %w", id, err)
		}
		if !slices.Contains(n.Channels, ChannelInbox) || n.CreatedAt.Before(since) {
			continue
		}
		if ms, err := strconv.ParseInt(fields[readPrefix+id], 10, 64); err == nil {
			n.ReadAt = time.UnixMilli(ms).UTC()
		}
		n.Person = pid
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b Notification) int { return strings.Compare(b.ID, a.ID) })
	if len(out) > e.opts.InboxCap { // the script trims only past twice the cap
		out = out[:e.opts.InboxCap]
	}
	if unreadOnly {
		out = slices.DeleteFunc(out, func(n Notification) bool { return !n.ReadAt.IsZero() })
	}
	return out, nil
}

// UnreadCount is how many notifications in the person's inbox are unread.
func (e *Engine) UnreadCount(ctx context.Context, pid string) (int, error) {
	ns, err := e.Notifications(ctx, pid, true)
	if err != nil {
		return 0, err
	}
	return len(ns), nil
}

// markReadScript marks notifications read: only ids in the person's own inbox change, so ids
// of anyone else's notifications do nothing. KEYS: inbox; ARGV: now (ms), ids.
var markReadScript = redis.NewScript(`
local n = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  if string.sub(id, 1, 2) ~= 'r:' and redis.call('HEXISTS', KEYS[1], id) == 1
     and redis.call('HSETNX', KEYS[1], 'r:' .. id, ARGV[1]) == 1 then
    n = n + 1
  end
end
return n
`)

// maxMarkRead bounds one markNotificationsRead call.
const maxMarkRead = 200

// MarkRead marks the person's notifications read and returns how many were unread.
func (e *Engine) MarkRead(ctx context.Context, pid string, ids []string) (int, error) {
	if len(ids) > maxMarkRead {
		return 0, inputErr("ids", "at most %d ids a call (got %d)", maxMarkRead, len(ids))
	}
	if len(ids) == 0 {
		return 0, nil
	}
	args := make([]any, 0, len(ids)+1)
	args = append(args, e.now().UnixMilli())
	for _, id := range ids {
		args = append(args, id)
	}
	n, err := markReadScript.Run(ctx, e.store.Client, []string{e.inboxKey(pid)}, args...).Int()
	if err != nil {
		return 0, fmt.Errorf("push: mark read: %w", err)
	}
	return n, nil
}

// Subscribe returns the person's notifications as they are created, on any replica, until ctx
// ends; then the channel closes.
func (e *Engine) Subscribe(ctx context.Context, pid string) (<-chan Notification, error) {
	return e.hub.subscribe(ctx, pid)
}

// QueueNote queues on p the read of one of the person's notifications, for delivery: the
// returned function gives it once p has run, or false when it has left the inbox (trimmed or
// past its TTL) or cannot be read.
func (e *Engine) QueueNote(ctx context.Context, p redis.Pipeliner, pid, nid string) func() (delivery.Note, bool) {
	cmd := p.HGet(ctx, e.inboxKey(pid), nid)
	return func() (delivery.Note, bool) {
		raw, err := cmd.Result()
		if err != nil {
			return delivery.Note{}, false
		}
		var n Notification
		if json.Unmarshal([]byte(raw), &n) != nil {
			return delivery.Note{}, false
		}
		return delivery.Note{
			ID: n.ID, Service: n.Service, Title: n.Title, Body: n.Body, Link: n.Link,
			Category: n.Category, Channel: catalog.ChannelSlug(n.Category),
		}, true
	}
}
