package devices

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/seal"
)

// How a registration stays right when it races others of the same token, or stops half-way.
//
// The token's index (one key, one slot) and the devices of each person (one key per person,
// other slots) cannot change in one transaction. So a registration by P is four single-key
// steps:
//
//  1. claim: the index becomes "P seq", seq larger than any earlier claim of the token; the
//     earlier owner (and any earlier owners it had still to release) stays listed after it;
//  2. release: each listed earlier owner loses the device if its record is older than seq;
//  3. write: P's record, carrying seq, unless P's hash already holds a later one;
//  4. settle: the index drops the list of earlier owners if it still says what step 1 wrote;
//     if it names someone else (or no one), P's record of this claim or older is removed.
//
// Records are removed only when they are older than a claim the remover knows of, so a late
// step never undoes a later registration. At rest the token is on the person of the last
// claim W only: W's record is the newest, so nothing removes it; any other person L wrote its
// record before its own settle, which either saw a later claim and removed it, or saw L still
// the owner, in which case the next claim by someone else came after that record was written
// and released it. A registration that failed after step 1 leaves the earlier owners listed
// in the index, and the next claim of the token releases them.

// claimScript is step 1. KEYS[1] the token's index; ARGV[1] the person, ARGV[2] the time in
// µs, the least seq to take (so that a claim after the index was cleared still comes after
// the earlier ones). Returns the index's new value.
var claimScript = redis.NewScript(`
local old = redis.call('GET', KEYS[1])
local seq = tonumber(ARGV[2])
local release = {}
if old then
  local f = {}
  for w in string.gmatch(old, '%S+') do f[#f + 1] = w end
  local prev = tonumber(f[2])
  if prev and prev >= seq then seq = prev + 1 end
  local seen = {[ARGV[1]] = true}
  for i, w in ipairs(f) do
    if i ~= 2 and not seen[w] then
      seen[w] = true
      release[#release + 1] = w
    end
  end
end
local v = ARGV[1] .. ' ' .. string.format('%.0f', seq)
if #release > 0 then v = v .. ' ' .. table.concat(release, ' ') end
redis.call('SET', KEYS[1], v)
return v
`)

// releaseScript removes a device from a person's hash if its record is older than a claim.
// KEYS[1] the person's devices; ARGV[1] the device id, ARGV[2] the claim's seq.
var releaseScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and cjson.decode(cur).seq < tonumber(ARGV[2]) then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0
`)

// writeScript is step 3, with the cap. KEYS[1] the person's devices; ARGV[1] the device id,
// ARGV[2] its record, ARGV[3] the record's seq, ARGV[4] the most devices a person keeps.
// Returns 0 when a later record was already there, else 1 followed by the records it evicted.
//
// A device new to the person beyond the cap evicts the one registered longest ago (then the
// lower seq, then the lower id): a phone that has not registered its token for that long has
// most likely been replaced, and a person is never refused a new device.
var writeScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  if cjson.decode(cur).seq >= tonumber(ARGV[3]) then return {0} end
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return {1}
end
local out = {1}
local max = tonumber(ARGV[4])
while redis.call('HLEN', KEYS[1]) >= max do
  local all = redis.call('HGETALL', KEYS[1])
  local oid, oraw, oreg, oseq
  for i = 1, #all, 2 do
    local r = cjson.decode(all[i + 1])
    if oid == nil or r.registered < oreg or (r.registered == oreg and (r.seq < oseq or (r.seq == oseq and all[i] < oid))) then
      oid, oraw, oreg, oseq = all[i], all[i + 1], r.registered, r.seq
    end
  end
  redis.call('HDEL', KEYS[1], oid)
  out[#out + 1] = oraw
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return out
`)

// casScript replaces the index's value if it is still ARGV[1]: by ARGV[2], or removes it when
// ARGV[2] is "". KEYS[1] the token's index. Returns the value now ("" for none).
var casScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] and ARGV[1] ~= ARGV[2] then
  if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2]) end
  v = ARGV[2]
end
return v or ''
`)

// claim is a parsed index value.
type claim struct {
	owner   string
	seq     int64
	pending []string // earlier owners still to release
}

func parseClaim(v string) (claim, bool) {
	f := strings.Fields(v)
	if len(f) < 2 {
		return claim{}, false
	}
	seq, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return claim{}, false
	}
	return claim{owner: f[0], seq: seq, pending: f[2:]}, true
}

// Register records that the person's app on a device of the platform receives pushes at an
// FCM token: RegisterVendor with FCM.
func (d *Devices) Register(ctx context.Context, pid, app, platform, token string) (Device, error) {
	return d.RegisterVendor(ctx, pid, app, platform, VendorFCM, token)
}

// RegisterVendor records that the person's app on a device of the platform receives pushes at
// token, a token of vendor (FCM, APNS or HMS). The token is the device: registering it again
// is the same device (its app and platform updated), and a token registered by someone else
// moves to this person. Bad input is an *InputError naming app, platform, vendor or token.
func (d *Devices) RegisterVendor(ctx context.Context, pid, app, platform, vendor, token string) (Device, error) {
	if err := checkPID(pid); err != nil {
		return Device{}, err
	}
	if vendor == VendorAPNs {
		// Hex in either case is the same token: one device, whatever case the app sends.
		token = strings.ToLower(token)
	}
	if err := d.check(app, platform, vendor, token); err != nil {
		return Device{}, err
	}
	sealed, err := seal.Seal(d.kek, sealPurpose(vendor), []byte(token))
	if err != nil {
		return Device{}, fmt.Errorf("devices: register: %w", err)
	}
	hash := tokenHash(vendor, token)
	id := deviceID(hash)
	now := d.now()
	c := d.store.Client

	v, err := claimScript.Run(ctx, c, []string{d.indexKey(hash)}, pid, now.UnixMicro()).Text()
	if err != nil {
		return Device{}, fmt.Errorf("devices: register: claim token: %w", err)
	}
	cl, ok := parseClaim(v)
	if !ok {
		return Device{}, errors.New("devices: register: claim token: unexpected index value")
	}
	if err := d.release(ctx, cl.pending, id, cl.seq); err != nil {
		return Device{}, fmt.Errorf("devices: register: %w", err)
	}

	stored := vendor
	if vendor == VendorFCM {
		stored = "" // as records from before vendors, which older replicas read
	}
	rec := record{App: app, Platform: platform, Vendor: stored, Token: sealed, Registered: now.Unix(), Seq: cl.seq, Hash: hash}
	blob, err := json.Marshal(rec)
	if err != nil {
		return Device{}, fmt.Errorf("devices: register: %w", err)
	}
	res, err := writeScript.Run(ctx, c, []string{d.devicesKey(pid)}, id, blob, cl.seq, d.max).Slice()
	if err != nil {
		return Device{}, fmt.Errorf("devices: register: write device: %w", err)
	}
	if len(res) == 0 {
		return Device{}, errors.New("devices: register: write device: empty reply")
	}
	for _, raw := range res[1:] {
		var ev record
		s, _ := raw.(string)
		if err := json.Unmarshal([]byte(s), &ev); err != nil {
			return Device{}, fmt.Errorf("devices: register: evicted a malformed record: %w", err)
		}
		if err := d.clearIndex(ctx, pid, ev); err != nil {
			return Device{}, fmt.Errorf("devices: register: evict: %w", err)
		}
	}

	short := pid + " " + strconv.FormatInt(cl.seq, 10)
	now2, err := casScript.Run(ctx, c, []string{d.indexKey(hash)}, v, short).Text()
	if err != nil {
		return Device{}, fmt.Errorf("devices: register: settle: %w", err)
	}
	if cur, ok := parseClaim(now2); !ok || cur.owner != pid {
		// Someone registered the token after us (or removed it): our record is stale.
		if err := d.release(ctx, []string{pid}, id, cl.seq+1); err != nil {
			return Device{}, fmt.Errorf("devices: register: %w", err)
		}
	}
	return rec.device(id), nil
}

// release removes device id from each person's hash if its record is older than seq.
func (d *Devices) release(ctx context.Context, pids []string, id string, seq int64) error {
	for _, p := range pids {
		if checkPID(p) != nil {
			continue // not written by us; nothing of ours to remove there
		}
		if err := releaseScript.Run(ctx, d.store.Client, []string{d.devicesKey(p)}, id, seq).Err(); err != nil {
			return fmt.Errorf("release token from a previous owner: %w", err)
		}
	}
	return nil
}

// clearIndex removes the token's index if it still names the claim that wrote rec for pid,
// after releasing the earlier owners that claim had still to release.
func (d *Devices) clearIndex(ctx context.Context, pid string, rec record) error {
	if rec.Hash == "" {
		return nil
	}
	key := d.indexKey(rec.Hash)
	v, err := d.store.Client.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read token index: %w", err)
	}
	cl, ok := parseClaim(v)
	if !ok || cl.owner != pid || cl.seq != rec.Seq {
		return nil // the token moved on, or was registered again since
	}
	if err := d.release(ctx, cl.pending, deviceID(rec.Hash), cl.seq); err != nil {
		return err
	}
	if err := casScript.Run(ctx, d.store.Client, []string{key}, v, "").Err(); err != nil {
		return fmt.Errorf("clear token index: %w", err)
	}
	return nil
}
