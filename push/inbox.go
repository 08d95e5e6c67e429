package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/push/catalog"
	"github.com/tongban/tongban/push/channel"
	"github.com/tongban/tongban/push/delivery"
)

// The inbox hash keeps its own unread count, so that unreadCount is one read and decodes
// nothing. Three fields, whose names no notification id ("n_…") or read mark ("r:…") can
// take:
//
//	_n       notifications stored that go to the inbox channel (push-only ones are stored
//	         too, for delivery, but never shown)
//	_unread  how many of those have no read mark
//	_first   the smallest of their ids ("" for none): the oldest, since ids sort by creation
//	_len     the hash's number of fields as of the last write that kept the counter
//
// notifyScript adds to them, markReadScript takes from them, and both leave them alone when
// they are absent (an inbox from before them, or one notifyScript just trimmed). _len tells
// a write that did not keep them (a replica of an earlier build during a rolling deploy adds
// a notification or a read mark and nothing else): the hash then has more fields than _len
// says, and the counter does not hold. The count is what the inbox shows only while every
// counted notification is shown: at most the cap of them, none past the TTL (_first tells). Otherwise, and when the fields are absent, the
// next read counts again from the notifications, drops what can never be shown again (past
// the TTL, or behind the newest cap), and stores the count: once per change, not per read.
const (
	fieldCount  = "_n"
	fieldUnread = "_unread"
	fieldFirst  = "_first"
	fieldLen    = "_len"
)

// counterField reports whether an inbox field is one of the counter's.
func counterField(f string) bool { return strings.HasPrefix(f, "_") }

// Notifications returns the person's inbox, newest first: at most the inbox cap, none older
// than its TTL, none of a rule that notifies by push only. The inbox is small by
// construction, so callers page over it in memory.
func (e *Engine) Notifications(ctx context.Context, pid string, unreadOnly bool) ([]Notification, error) {
	out, _, err := e.readInbox(ctx, pid)
	if err != nil {
		return nil, err
	}
	if unreadOnly {
		out = slices.DeleteFunc(out, func(n Notification) bool { return !n.ReadAt.IsZero() })
	}
	return out, nil
}

// UnreadCount is how many notifications in the person's inbox are unread: one HMGET of the
// counter while it holds, else a count from the notifications that it stores.
func (e *Engine) UnreadCount(ctx context.Context, pid string) (int, error) {
	key := e.inboxKey(pid)
	var vals *redis.SliceCmd
	var hlen *redis.IntCmd
	_, err := e.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		vals = p.HMGet(ctx, key, fieldCount, fieldUnread, fieldFirst, fieldLen)
		hlen = p.HLen(ctx, key)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("push: read unread count: %w", err)
	}
	if unread, ok := e.countHolds(vals.Val(), hlen.Val()); ok {
		return unread, nil
	}
	_, unread, err := e.readInbox(ctx, pid)
	return unread, err
}

// countHolds returns the stored unread count (vals: _n, _unread, _first, _len) when it is
// what the inbox of hlen fields shows.
func (e *Engine) countHolds(vals []any, hlen int64) (int, bool) {
	if len(vals) != 4 || str(vals[3]) != strconv.FormatInt(hlen, 10) {
		return 0, false
	}
	n, err1 := strconv.Atoi(str(vals[0]))
	unread, err2 := strconv.Atoi(str(vals[1]))
	first, ok := vals[2].(string)
	if err1 != nil || err2 != nil || !ok || n > e.opts.InboxCap || unread < 0 || unread > n {
		return 0, false
	}
	if n > 0 && first < e.oldestID() {
		return 0, false // a counted notification is past the TTL: no longer shown
	}
	return unread, true
}

func str(v any) string { s, _ := v.(string); return s }

// oldestID is the smallest id a notification still within the TTL can have.
func (e *Engine) oldestID() string {
	return fmt.Sprintf("n_%011x", e.now().Add(-e.opts.InboxTTL).UnixMilli())
}

// readInbox decodes the inbox and returns what it shows, newest first, and how many of those
// are unread. When the stored count is absent or does not hold, it drops the notifications
// that can never be shown again and stores the count, in one transaction that a concurrent
// change (a new notification, a read mark) makes it skip: that change is counted then by
// the next read.
func (e *Engine) readInbox(ctx context.Context, pid string) ([]Notification, int, error) {
	key := e.inboxKey(pid)
	var (
		shown  []Notification
		unread int
	)
	txf := func(tx *redis.Tx) error {
		fields, err := tx.HGetAll(ctx, key).Result()
		if err != nil {
			return fmt.Errorf("push: read inbox: %w", err)
		}
		var drop []string
		shown, drop, err = e.shown(pid, fields)
		if err != nil {
			return err
		}
		unread = 0
		for _, n := range shown {
			if n.ReadAt.IsZero() {
				unread++
			}
		}
		if len(fields) == 0 {
			return nil // no inbox: nothing to count, and no key to create without a TTL
		}
		if _, ok := e.countHolds([]any{fields[fieldCount], fields[fieldUnread], fields[fieldFirst], fields[fieldLen]}, int64(len(fields))); ok &&
			fields[fieldCount] == strconv.Itoa(len(shown)) && fields[fieldUnread] == strconv.Itoa(unread) && len(drop) == 0 {
			return nil
		}
		first := ""
		if len(shown) > 0 {
			first = shown[len(shown)-1].ID
		}
		// The fields once this is written: those kept, and the counter's four.
		after := 4
		for f := range fields {
			if !counterField(f) && !slices.Contains(drop, f) {
				after++
			}
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			if len(drop) > 0 {
				p.HDel(ctx, key, drop...)
			}
			p.HSet(ctx, key, fieldCount, len(shown), fieldUnread, unread, fieldFirst, first, fieldLen, after)
			return nil
		})
		return err
	}
	err := e.store.Client.Watch(ctx, txf, key)
	if errors.Is(err, redis.TxFailedErr) {
		err = nil // what was read is right as of its reading; the count is stored next time
	}
	if err != nil {
		return nil, 0, err
	}
	return shown, unread, nil
}

// shown returns what an inbox's fields show, newest first (inbox channel, within the TTL, at
// most the cap of them), and the fields of notifications that can never be shown again (past
// the TTL; or of the inbox channel and behind the newest cap, which only newer ones can
// follow) with their read marks. Push-only notifications within the TTL stay for delivery.
func (e *Engine) shown(pid string, fields map[string]string) ([]Notification, []string, error) {
	since := e.now().Add(-e.opts.InboxTTL)
	var out []Notification
	var drop []string
	for id, blob := range fields {
		if strings.HasPrefix(id, readPrefix) || counterField(id) {
			continue
		}
		var n Notification
		if err := json.Unmarshal([]byte(blob), &n); err != nil {
			return nil, nil, fmt.Errorf("push: corrupt notification %s: %w", id, err)
		}
		if n.CreatedAt.Before(since) {
			drop = append(drop, id, readPrefix+id)
			continue
		}
		if !slices.Contains(n.Channels, ChannelInbox) {
			continue
		}
		if ms, err := strconv.ParseInt(fields[readPrefix+id], 10, 64); err == nil {
			n.ReadAt = time.UnixMilli(ms).UTC()
		}
		n.Person = pid
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b Notification) int { return strings.Compare(b.ID, a.ID) })
	if len(out) > e.opts.InboxCap { // the notify script trims only past twice the cap
		for _, n := range out[e.opts.InboxCap:] {
			drop = append(drop, n.ID, readPrefix+n.ID)
		}
		out = out[:e.opts.InboxCap]
	}
	return out, drop, nil
}

// markReadScript marks notifications read: only ids in the person's own inbox change, so ids
// of anyone else's notifications (and the counter's fields) do nothing. Each inbox
// notification newly marked comes off the unread count, when there is one, and each mark adds
// a field to _len.
// KEYS: inbox; ARGV: now (ms), ids.
var markReadScript = redis.NewScript(`
local c = redis.call('HMGET', KEYS[1], '_unread', '_len')
local counted = c[1] and c[2] and c[1]
local n, off = 0, 0
for i = 2, #ARGV do
  local id = ARGV[i]
  if string.sub(id, 1, 1) ~= '_' and string.sub(id, 1, 2) ~= 'r:' then
    local blob = redis.call('HGET', KEYS[1], id)
    if blob and redis.call('HSETNX', KEYS[1], 'r:' .. id, ARGV[1]) == 1 then
      n = n + 1
      if counted then
        local ok, note = pcall(cjson.decode, blob)
        if ok and type(note) == 'table' and type(note.channels) == 'table' then
          for _, c in ipairs(note.channels) do
            if c == 'INBOX' then off = off + 1 break end
          end
        end
      end
    end
  end
end
if counted and n > 0 then
  redis.call('HSET', KEYS[1], '_unread', math.max(tonumber(counted) - off, 0), '_len', tonumber(c[2]) + n)
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
	cmd := p.HMGet(ctx, e.inboxKey(pid), nid, readPrefix+nid)
	return func() (delivery.Note, bool) {
		vals, err := cmd.Result()
		if err != nil || len(vals) != 2 {
			return delivery.Note{}, false
		}
		raw, ok := vals[0].(string)
		if !ok {
			return delivery.Note{}, false
		}
		var n Notification
		if json.Unmarshal([]byte(raw), &n) != nil {
			return delivery.Note{}, false
		}
		svc, _ := e.catalog.Service(n.Service)
		return delivery.Note{Note: channel.Note{
			ID: n.ID, Service: n.Service, ServiceName: svc.Name, Title: n.Title, Body: n.Body, Link: n.Link,
			Category: n.Category, AndroidChannel: catalog.ChannelSlug(n.Category), Created: n.CreatedAt,
		}, Read: vals[1] != nil}, true
	}
}
