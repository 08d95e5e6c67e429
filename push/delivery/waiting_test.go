package delivery_test

import (
	"context"
	"errors"
	"testing"

	"github.com/tongban/tongban/push/delivery"
	"github.com/tongban/tongban/push/devices"
)

// One call registers the device and sends what waited for it.
func TestRegisterDeviceReleasesWhatWaited(t *testing.T) {
	w := newDeliveryWorld(t, nil)
	ctx := context.Background()
	w.rule("出行")
	pid, n := w.person(1)
	w.event(n)
	notes, err := w.push.Notifications(ctx, pid, false)
	if err != nil || len(notes) != 1 {
		t.Fatalf("inbox %+v %v", notes, err)
	}
	w.eventually("the job waits for a device", func() bool { return w.status(pid, notes[0].ID) == "waiting_for_device" })
	a := token("registered")
	d, err := w.d.RegisterDevice(ctx, pid, "zheliban", "ANDROID", a)
	if err != nil || d.ID == "" {
		t.Fatalf("register: %+v %v", d, err)
	}
	w.eventually("the new device receives it", func() bool { return len(w.received(a)) == 1 })
	if n, err := w.store.Client.Exists(ctx, delivery.WaitingKey(w.store, pid)).Result(); err != nil || n != 0 {
		t.Fatalf("the waiting entry is still there: %d %v", n, err)
	}
}

func TestRegisterDeviceRefusals(t *testing.T) {
	w := newDeliveryWorld(t, nil)
	ctx := context.Background()
	pid, _ := w.person(1)

	// Bad input: devices' own error, nothing registered.
	_, err := w.d.RegisterDevice(ctx, pid, "zheliban", "PALM_PILOT", token("palm"))
	var ie *devices.InputError
	if !errors.As(err, &ie) || ie.Field != "platform" {
		t.Errorf("a bad platform: %v, want an input error on platform", err)
	}
	if list, err := w.devices.List(ctx, pid); err != nil || len(list) != 0 {
		t.Fatalf("devices after a refusal: %+v %v", list, err)
	}

	// The release fails (the waiting entry is not a hash): the device is registered all the same.
	if err := w.store.Client.Set(ctx, delivery.WaitingKey(w.store, pid), "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	d, err := w.d.RegisterDevice(ctx, pid, "zheliban", "ANDROID", token("kept"))
	if !errors.Is(err, delivery.ErrStillWaiting) || d.ID == "" {
		t.Fatalf("a failed release: %+v %v, want the device and ErrStillWaiting", d, err)
	}
	if list, err := w.devices.List(ctx, pid); err != nil || len(list) != 1 || list[0].ID != d.ID {
		t.Fatalf("devices after a failed release: %+v %v", list, err)
	}

}
