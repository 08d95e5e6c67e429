package devices

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/seal"
)

// Device is one registered device as the person sees it: never its token.
type Device struct {
	ID       string
	App      string
	Platform string // ANDROID, IOS, HARMONY, WEB or MINIPROGRAM
	// Vendor is the push service the token is of: FCM, APNS (iPhones reached directly, not
	// through FCM) or HMS (HarmonyOS Push Kit, for Huawei and Honor phones).
	Vendor string
	// RegisteredAt is when the token was last registered, to the second: an app that
	// registers its token again (as FCM asks apps to do from time to time) refreshes it.
	RegisteredAt time.Time
}

// Target is a device with its token, for the sender only.
type Target struct {
	Device
	Token string
}

// InputError is input the caller must fix: which field and what is wrong with it. The
// message never repeats a token.
type InputError struct {
	Field   string
	Message string
}

func (e *InputError) Error() string { return e.Field + ": " + e.Message }

// ErrSealed means a stored token cannot be opened: the record was tampered with or sealed
// under another key-encryption key. Retrying does not help.
var ErrSealed = errors.New("devices: a stored token cannot be opened")

// DefaultMaxPerPerson is how many devices a person keeps when Options.MaxPerPerson is 0.
const DefaultMaxPerPerson = 20

// Vendors is the GraphQL enum PushVendor: the push services a device token can be of.
var Vendors = [...]string{VendorFCM, VendorAPNs, VendorHMS}

// The push vendors.
const (
	VendorFCM  = "FCM"
	VendorAPNs = "APNS"
	VendorHMS  = "HMS"
)

// sealPurpose binds a sealed token to its vendor: a token sealed as an APNs token does not
// open as an FCM one. FCM's purpose is the one tokens had before vendors, so those still open.
func sealPurpose(vendor string) string {
	switch vendor {
	case VendorAPNs:
		return "apns-token"
	case VendorHMS:
		return "hms-token"
	}
	return "fcm-token"
}

// platforms is the GraphQL enum Platform.
var platforms = [...]string{"ANDROID", "IOS", "HARMONY", "WEB", "MINIPROGRAM"}

// Options configure Devices.
type Options struct {
	Store *redisx.Store
	KEK   []byte   // 32 bytes; seals the tokens
	Apps  []string // the member apps' ids: a device belongs to one of them
	Now   func() time.Time
	// MaxPerPerson caps a person's devices; 0 means DefaultMaxPerPerson.
	MaxPerPerson int
}

// Devices keeps people's devices in the store.
type Devices struct {
	store *redisx.Store
	kek   []byte
	apps  map[string]bool
	now   func() time.Time
	max   int
}

// New checks the options and returns the devices of the store.
func New(o Options) (*Devices, error) {
	switch {
	case o.Store == nil:
		return nil, errors.New("devices: no store")
	case len(o.KEK) != seal.KeySize:
		return nil, fmt.Errorf("devices: key-encryption key is %d bytes, want %d", len(o.KEK), seal.KeySize)
	case len(o.Apps) == 0:
		return nil, errors.New("devices: no member apps")
	case o.MaxPerPerson < 0:
		return nil, fmt.Errorf("devices: MaxPerPerson is %d, want 0 (the default, %d) or more", o.MaxPerPerson, DefaultMaxPerPerson)
	}
	d := &Devices{store: o.Store, kek: slices.Clone(o.KEK), apps: map[string]bool{}, now: o.Now, max: o.MaxPerPerson}
	for _, a := range o.Apps {
		d.apps[a] = true
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.max == 0 {
		d.max = DefaultMaxPerPerson
	}
	return d, nil
}

// ValidToken reports whether token looks like an FCM registration token: 32 to 4096
// characters of A-Z a-z 0-9 _ : -, the check FCM (and internal/fakefcm) applies.
func ValidToken(token string) bool { return tokenProblem(token) == "" }

// vendorTokenProblem says what is wrong with a token of vendor, "" when nothing is.
func vendorTokenProblem(vendor, token string) string {
	switch vendor {
	case VendorAPNs:
		// An APNs device token is binary, sent to providers as hex: 32 bytes today, and Apple
		// says to expect longer ones, so up to 100 bytes (200 hex digits) are taken.
		const form = "an APNs device token is 64 to 200 hexadecimal digits, an even number of them"
		switch {
		case token == "":
			return "required; " + form
		case len(token) < 64 || len(token) > 200 || len(token)%2 != 0:
			return "wrong length; " + form
		}
		for i := 0; i < len(token); i++ {
			if !isHex(token[i]) {
				return "contains a character that is not a hexadecimal digit; " + form
			}
		}
		return ""
	case VendorHMS:
		// Push Kit tokens are opaque; those seen are 100 to 200 characters of letters, digits
		// and a few separators. The bound keeps junk out without guessing their exact shape.
		const form = "a Push Kit token is 32 to 512 letters, digits, '_', '-', ':', '.', '+', '/' and '='"
		switch {
		case token == "":
			return "required; " + form
		case len(token) < 32:
			return "too short; " + form
		case len(token) > 512:
			return "too long; " + form
		}
		for i := 0; i < len(token); i++ {
			c := token[i]
			if !(isAlnum(c) || strings.IndexByte("_-:.+/=", c) >= 0) {
				return "contains a character that is not allowed; " + form
			}
		}
		return ""
	}
	return tokenProblem(token)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func tokenProblem(token string) string {
	const form = "an FCM registration token is 32 to 4096 letters, digits, '_', ':' and '-'"
	switch {
	case token == "":
		return "required; " + form
	case len(token) < 32:
		return "too short; " + form
	case len(token) > 4096:
		return "too long; " + form
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == ':' || c == '-') {
			return "contains a character that is not allowed; " + form
		}
	}
	return ""
}

func (d *Devices) check(app, platform, vendor, token string) error {
	if !d.apps[app] {
		if app == "" {
			return &InputError{"app", "required; want the id of a member app"}
		}
		return &InputError{"app", fmt.Sprintf("%s is not a member app", quote(app))}
	}
	if !slices.Contains(platforms[:], platform) {
		return &InputError{"platform", fmt.Sprintf("%s is not a platform; want one of %s", quote(platform), strings.Join(platforms[:], ", "))}
	}
	switch {
	case !slices.Contains(Vendors[:], vendor):
		return &InputError{"vendor", fmt.Sprintf("%s is not a push vendor; want one of %s", quote(vendor), strings.Join(Vendors[:], ", "))}
	case vendor == VendorAPNs && platform != "IOS":
		return &InputError{"vendor", "APNS tokens are of iPhones and iPads: the platform must be IOS"}
	case vendor == VendorHMS && platform != "HARMONY" && platform != "ANDROID":
		return &InputError{"vendor", "HMS tokens are of HarmonyOS and Huawei Android phones: the platform must be HARMONY or ANDROID"}
	}
	if p := vendorTokenProblem(vendor, token); p != "" {
		return &InputError{"token", p}
	}
	return nil
}

// quote quotes a short part of input for a message.
func quote(s string) string {
	const max = 40
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max]) + "…"
	}
	return fmt.Sprintf("%q", s)
}

// checkPID refuses a person id that would break the key's hash tag. Person ids come from
// sessions, not from input, so this is a programming error, not an InputError.
func checkPID(pid string) error {
	if pid == "" || len(pid) > 64 || strings.ContainsAny(pid, "{} \t\r\n") {
		return fmt.Errorf("devices: malformed person id %q", pid)
	}
	return nil
}

// tokenHash is the token's SHA-256, base64url: the index key's suffix, and (its first 22
// characters) the device id. Tokens of APNs and HMS are hashed with their vendor's name in
// front, so that equal strings of two vendors are two devices; FCM's hash is the token's
// alone, as it was before vendors.
func tokenHash(vendor, token string) string {
	in := token
	if vendor != VendorFCM && vendor != "" {
		in = vendor + ":" + token
	}
	h := sha256.Sum256([]byte(in))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func deviceID(hash string) string { return "d_" + hash[:22] }

// validID reports whether id can be a device id, so that junk never reaches Redis.
func validID(id string) bool {
	if len(id) != 24 || !strings.HasPrefix(id, "d_") {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(id[2:])
	return err == nil
}

func (d *Devices) devicesKey(pid string) string { return d.store.Key("{p:" + pid + "}:devices") }
func (d *Devices) indexKey(hash string) string  { return d.store.Key("fcmtok:" + hash) }

// record is a device as stored.
type record struct {
	App        string `json:"app"`
	Platform   string `json:"platform"`
	Vendor     string `json:"vendor,omitempty"` // "" is FCM, as records from before vendors
	Token      string `json:"token"`            // sealed
	Registered int64  `json:"registered"`
	Seq        int64  `json:"seq"`
	Hash       string `json:"h"`
}

func (r record) device(id string) Device {
	return Device{ID: id, App: r.App, Platform: r.Platform, Vendor: r.vendor(), RegisteredAt: time.Unix(r.Registered, 0).UTC()}
}

func (r record) vendor() string {
	if r.Vendor == "" {
		return VendorFCM
	}
	return r.Vendor
}

type entry struct {
	id  string
	rec record
}

// decode reads a person's devices hash, oldest first.
func decode(pid string, m map[string]string) ([]entry, error) {
	es := make([]entry, 0, len(m))
	for id, raw := range m {
		var r record
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			return nil, fmt.Errorf("devices: person %s: device %s: malformed record: %w", pid, id, err)
		}
		es = append(es, entry{id, r})
	}
	slices.SortFunc(es, func(a, b entry) int {
		if a.rec.Registered != b.rec.Registered {
			return cmpInt(a.rec.Registered, b.rec.Registered)
		}
		if a.rec.Seq != b.rec.Seq {
			return cmpInt(a.rec.Seq, b.rec.Seq)
		}
		return strings.Compare(a.id, b.id)
	})
	return es, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// List returns the person's devices, oldest first, without their tokens.
func (d *Devices) List(ctx context.Context, pid string) ([]Device, error) {
	if err := checkPID(pid); err != nil {
		return nil, err
	}
	m, err := d.store.Client.HGetAll(ctx, d.devicesKey(pid)).Result()
	if err != nil {
		return nil, fmt.Errorf("devices: list: %w", err)
	}
	es, err := decode(pid, m)
	if err != nil {
		return nil, err
	}
	out := make([]Device, len(es))
	for i, e := range es {
		out[i] = e.rec.device(e.id)
	}
	return out, nil
}

// QueueTargets queues the read of the person's devices on p, so that a sender can read many
// people's in one pipeline, and returns what yields them, oldest first, tokens opened, once
// p has run. A token that cannot be opened is left out and named in an error wrapping
// ErrSealed, returned together with the targets that did open, so the sender can go on
// with those.
func (d *Devices) QueueTargets(ctx context.Context, p redis.Pipeliner, pid string) func() ([]Target, error) {
	if err := checkPID(pid); err != nil {
		return func() ([]Target, error) { return nil, err }
	}
	cmd := p.HGetAll(ctx, d.devicesKey(pid))
	return func() ([]Target, error) {
		m, err := cmd.Result()
		if err != nil {
			return nil, fmt.Errorf("devices: read targets: %w", err)
		}
		es, err := decode(pid, m)
		if err != nil {
			return nil, err
		}
		out := make([]Target, 0, len(es))
		var errs []error
		for _, e := range es {
			tok, err := seal.Open(d.kek, sealPurpose(e.rec.vendor()), e.rec.Token)
			if err != nil {
				errs = append(errs, fmt.Errorf("%w: person %s, device %s: %v", ErrSealed, pid, e.id, err))
				continue
			}
			out = append(out, Target{Device: e.rec.device(e.id), Token: string(tok)})
		}
		return out, errors.Join(errs...)
	}
}
