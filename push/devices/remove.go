package devices

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// removeScript removes a device and returns its record ("" when there was none).
// KEYS[1] the person's devices; ARGV[1] the device id.
var removeScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then redis.call('HDEL', KEYS[1], ARGV[1]) end
return cur or ''
`)

// Unregister removes the person's device; false when the person has no such device (the id
// of someone else's device included).
func (d *Devices) Unregister(ctx context.Context, pid, id string) (bool, error) {
	ok, err := d.remove(ctx, pid, id)
	if err != nil {
		return false, fmt.Errorf("devices: unregister: %w", err)
	}
	return ok, nil
}

// Drop removes a device FCM refused for good (UNREGISTERED, or INVALID_ARGUMENT naming the
// token), and the token's index if it still names this person, so the token is free for
// whoever registers it next. Other devices of the person, and the token's registration by
// someone else, are left alone.
func (d *Devices) Drop(ctx context.Context, pid, id string) (bool, error) {
	ok, err := d.remove(ctx, pid, id)
	if err != nil {
		return false, fmt.Errorf("devices: drop: %w", err)
	}
	return ok, nil
}

func (d *Devices) remove(ctx context.Context, pid, id string) (bool, error) {
	if err := checkPID(pid); err != nil {
		return false, err
	}
	if !validID(id) {
		return false, nil
	}
	raw, err := removeScript.Run(ctx, d.store.Client, []string{d.devicesKey(pid)}, id).Text()
	if err != nil {
		return false, err
	}
	if raw == "" {
		return false, nil
	}
	var rec record
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		return true, fmt.Errorf("removed a malformed record of device %s: %w", id, err)
	}
	return true, d.clearIndex(ctx, pid, rec)
}
