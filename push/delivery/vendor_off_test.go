package delivery_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tongban/tongban/push/devices"
)

// A token of a channel that is off is refused, naming the vendor, and nothing is stored; an FCM
// token is kept whatever, as before there were other channels.
func TestRegisteringATokenOfAChannelThatIsOff(t *testing.T) {
	t.Parallel()
	w := newDeliveryWorld(t, nil) // FCM only
	pid, _ := w.person(1)
	ctx := context.Background()
	for _, c := range []struct{ platform, vendor, token string }{
		{"IOS", devices.VendorAPNs, strings.Repeat("ab", 32)},
		{"HARMONY", devices.VendorHMS, "IQAAAACy0" + strings.Repeat("Hm5", 40)},
	} {
		_, err := w.d.RegisterDeviceVendor(ctx, pid, "zheliban", c.platform, c.vendor, c.token)
		ie, ok := errors.AsType[*devices.InputError](err)
		if !ok || ie.Field != "vendor" || !strings.Contains(ie.Message, "not configured") {
			t.Fatalf("%s: got %v, want an input error on vendor", c.vendor, err)
		}
	}
	if list, err := w.devices.List(ctx, pid); err != nil || len(list) != 0 {
		t.Fatalf("refused tokens were stored: %v %v", list, err)
	}
	if _, err := w.d.RegisterDeviceVendor(ctx, pid, "zheliban", "ANDROID", devices.VendorFCM, token("fcm-kept")); err != nil {
		t.Fatal(err)
	}
}
