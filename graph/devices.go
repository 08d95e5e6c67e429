package graph

import (
	"errors"

	"github.com/tongban/tongban/graph/model"
	"github.com/tongban/tongban/push/devices"
	"github.com/tongban/tongban/push/prefs"
)

// deviceError maps the input errors of devices and preferences to BAD_USER_INPUT with the
// field; anything else is returned as is (the presenter makes it INTERNAL).
func deviceError(err error) error {
	var (
		de *devices.InputError
		pe *prefs.InputError
	)
	switch {
	case errors.As(err, &de):
		return badInput(de.Field, de.Error())
	case errors.As(err, &pe):
		return badInput(pe.Field, pe.Error())
	}
	return err
}

func (r *Resolver) device(d devices.Device) *model.Device {
	return &model.Device{ID: d.ID, App: r.app(d.App), Platform: model.Platform(d.Platform), RegisteredAt: d.RegisteredAt}
}

func preferences(p prefs.Preferences) *model.NotificationPreferences {
	out := &model.NotificationPreferences{TimeZone: p.TimeZone, MutedCategories: p.MutedCategories, PushEnabled: p.PushEnabled}
	if out.MutedCategories == nil {
		out.MutedCategories = []string{}
	}
	if p.QuietStart != "" {
		start, end := p.QuietStart, p.QuietEnd
		out.QuietStart, out.QuietEnd = &start, &end
	}
	return out
}
