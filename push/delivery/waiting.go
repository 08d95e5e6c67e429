package delivery

import (
	"context"
	"errors"
	"fmt"

	"github.com/tongban/tongban/push/channel"
	"github.com/tongban/tongban/push/devices"
)

// ErrStillWaiting says that a device was registered but the notifications that waited for the
// person's first device were not released; they wait on until the next registration.
var ErrStillWaiting = errors.New("delivery: the device is registered; the notifications that waited for one still wait")

// RegisterDevice registers a person's device (devices.Register) and releases the notifications
// that waited for one, because a person known only from events has nowhere to receive them
// until then. A refused registration returns devices' error as is (an *devices.InputError for
// bad input). Once registered, the device stays registered whatever happens to the release:
// a failed release returns the device with an error that matches ErrStillWaiting.
func (s *Service) RegisterDevice(ctx context.Context, pid, app, platform, token string) (devices.Device, error) {
	return s.RegisterDeviceVendor(ctx, pid, app, platform, devices.VendorFCM, token)
}

// RegisterDeviceVendor is RegisterDevice for a token of vendor (FCM, APNS or HMS).
func (s *Service) RegisterDeviceVendor(ctx context.Context, pid, app, platform, vendor, token string) (devices.Device, error) {
	// A token of a channel that is off would never be sent to, and the person would not know:
	// refuse it, as registerMiniProgram refuses a platform not configured. FCM's tokens are
	// kept even when FCM is off, as they always were: most apps register them at install.
	if k := vendorKind(vendor); vendor != devices.VendorFCM && k != channel.FCM && s.senders[k] == nil {
		return devices.Device{}, &devices.InputError{Field: "vendor", Message: vendor + " is not configured on this server: its tokens could not be sent to"}
	}
	d, err := s.devices.RegisterVendor(ctx, pid, app, platform, vendor, token)
	if err != nil {
		return devices.Device{}, err
	}
	if err := s.DeviceRegistered(ctx, pid); err != nil {
		return d, fmt.Errorf("%w: %w", ErrStillWaiting, err)
	}
	return d, nil
}
