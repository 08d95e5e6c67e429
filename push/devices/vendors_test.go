package devices_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tongban/tongban/internal/testenv"
	"github.com/tongban/tongban/push/devices"
)

// Tokens of APNs and Push Kit are checked for their own shape, and a vendor must fit the
// platform; each refusal names its field and writes nothing.
func TestRegisterVendorRefuses(t *testing.T) {
	f := newDevices(t, 0)
	apns := strings.Repeat("0a1b2c3d", 8)
	hms := "IQAAAACy0" + strings.Repeat("Hm5", 40)
	tests := []struct {
		name                           string
		platform, vendor, token, field string
		messageContains                string
	}{
		{"an unknown vendor", "ANDROID", "JPUSH", hms, "vendor", `"JPUSH" is not a push vendor; want one of FCM, APNS, HMS`},
		{"a vendor in lower case", "IOS", "apns", apns, "vendor", "is not a push vendor"},
		{"APNs on Android", "ANDROID", "APNS", apns, "vendor", "the platform must be IOS"},
		{"Push Kit on an iPhone", "IOS", "HMS", hms, "vendor", "HARMONY or ANDROID"},
		{"an APNs token too short", "IOS", "APNS", apns[:62], "token", "wrong length"},
		{"an APNs token of odd length", "IOS", "APNS", apns + "a", "token", "wrong length"},
		{"an APNs token too long", "IOS", "APNS", strings.Repeat("ab", 101), "token", "wrong length"},
		{"an APNs token not hex", "IOS", "APNS", apns[:63] + "g", "token", "not a hexadecimal digit"},
		{"an APNs token that is an FCM one", "IOS", "APNS", "fcm:" + strings.Repeat("x", 60), "token", "not a hexadecimal digit"},
		{"a Push Kit token too short", "HARMONY", "HMS", hms[:31], "token", "too short"},
		{"a Push Kit token too long", "HARMONY", "HMS", strings.Repeat("h", 513), "token", "too long"},
		{"a Push Kit token with a space", "HARMONY", "HMS", hms[:40] + " " + hms[41:], "token", "not allowed"},
		{"a Push Kit token with a NUL", "HARMONY", "HMS", hms[:40] + "\x00" + hms[41:], "token", "not allowed"},
		{"no token", "HARMONY", "HMS", "", "token", "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.RegisterVendor(ctx, "pA", "app-a", tt.platform, tt.vendor, tt.token)
			ie, ok := errors.AsType[*devices.InputError](err)
			if !ok {
				t.Fatalf("err = %v, want *InputError", err)
			}
			if ie.Field != tt.field || !strings.Contains(ie.Message, tt.messageContains) {
				t.Errorf("err = %q, want field %s and a message with %q", ie, tt.field, tt.messageContains)
			}
		})
	}
	if keys := testenv.Keys(t, f.store); len(keys) != 0 {
		t.Errorf("refused registrations wrote %v", keys)
	}
}

// A vendor's token is a device of its own: the same string as another vendor's token is
// another device; the token opens only as its vendor's; listing shows the vendor, never the
// token.
func TestVendorsAreApart(t *testing.T) {
	f := newDevices(t, 0)
	tok := strings.Repeat("ab", 50) // a valid APNs token and a valid FCM and Push Kit token
	fcm, err := f.Register(ctx, "pA", "app-a", "ANDROID", tok)
	if err != nil {
		t.Fatal(err)
	}
	apns, err := f.RegisterVendor(ctx, "pA", "app-a", "IOS", devices.VendorAPNs, tok)
	if err != nil {
		t.Fatal(err)
	}
	hms, err := f.RegisterVendor(ctx, "pA", "app-a", "HARMONY", devices.VendorHMS, tok)
	if err != nil {
		t.Fatal(err)
	}
	if fcm.ID == apns.ID || apns.ID == hms.ID || fcm.ID == hms.ID {
		t.Fatalf("one device for three vendors: %s %s %s", fcm.ID, apns.ID, hms.ID)
	}
	if fcm.Vendor != "FCM" || apns.Vendor != "APNS" || hms.Vendor != "HMS" {
		t.Fatalf("vendors %s %s %s", fcm.Vendor, apns.Vendor, hms.Vendor)
	}
	targets := f.targets(t, "pA")
	if len(targets) != 3 {
		t.Fatalf("%d targets, want 3", len(targets))
	}
	for _, tg := range targets {
		if tg.Token != tok {
			t.Fatalf("%s's token opened as %q", tg.Vendor, tg.Token)
		}
	}
	// An FCM record written before vendors (no vendor field) is still FCM.
	raw := f.store.Client.HGet(ctx, f.store.Key("{p:pA}:devices"), fcm.ID).Val()
	if strings.Contains(raw, `"vendor"`) {
		t.Fatalf("an FCM record carries a vendor field older replicas do not know: %s", raw)
	}
}

// targets reads the person's devices with their tokens, as delivery does.
func (f fixture) targets(t *testing.T, pid string) []devices.Target {
	t.Helper()
	p := f.store.Client.Pipeline()
	get := f.QueueTargets(ctx, p, pid)
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := get()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// An APNs token is hex: the same token in capitals is the same device.
func TestAPNsTokenCaseIsOneDevice(t *testing.T) {
	f := newDevices(t, 0)
	tok := strings.Repeat("0a1b2c3d", 8)
	a, err := f.RegisterVendor(ctx, "pA", "app-a", "IOS", devices.VendorAPNs, tok)
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.RegisterVendor(ctx, "pA", "app-a", "IOS", devices.VendorAPNs, strings.ToUpper(tok))
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID {
		t.Fatalf("two devices for one token in two cases: %s %s", a.ID, b.ID)
	}
	if ts := f.targets(t, "pA"); len(ts) != 1 || ts[0].Token != tok {
		t.Fatalf("targets %+v", ts)
	}
}
