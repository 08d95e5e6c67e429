package graph

import (
	"errors"

	"github.com/tongban/tongban/graph/model"
	"github.com/tongban/tongban/push/channel"
	"github.com/tongban/tongban/push/devices"
	"github.com/tongban/tongban/push/miniprogram"
	"github.com/tongban/tongban/push/prefs"
)

// deviceError maps the input errors of devices and preferences to BAD_USER_INPUT with the
// field; anything else is returned as is (the presenter makes it INTERNAL).
func deviceError(err error) error {
	var (
		de *devices.InputError
		pe *prefs.InputError
		me *miniprogram.InputError
	)
	switch {
	case errors.As(err, &de):
		return badInput(de.Field, de.Error())
	case errors.As(err, &pe):
		return badInput(pe.Field, pe.Error())
	case errors.As(err, &me):
		return badInput(me.Field, me.Error())
	}
	return err
}

func miniProgramKind(p model.MiniProgramPlatform) channel.Kind {
	if p == model.MiniProgramPlatformAlipay {
		return channel.Alipay
	}
	return channel.WeChat
}

func (r *Resolver) miniProgram(b miniprogram.Binding) *model.MiniProgram {
	p := model.MiniProgramPlatformWechat
	if b.Kind == channel.Alipay {
		p = model.MiniProgramPlatformAlipay
	}
	return &model.MiniProgram{App: r.app(b.App), Platform: p, BoundAt: b.BoundAt, Subscriptions: subscriptions(b.Subscriptions)}
}

func subscriptions(subs []miniprogram.Subscription) []model.MiniProgramSubscription {
	out := make([]model.MiniProgramSubscription, len(subs))
	for i, s := range subs {
		out[i] = model.MiniProgramSubscription{TemplateID: s.Template, Category: s.Category, Kind: model.SubscriptionKindOneTime, RecordedAt: s.RecordedAt}
		if s.LongTerm {
			out[i].Kind = model.SubscriptionKindLongTerm
		} else {
			n := s.Remaining
			out[i].Remaining = &n
		}
	}
	return out
}

func (r *Resolver) device(d devices.Device) *model.Device {
	return &model.Device{ID: d.ID, App: r.app(d.App), Platform: model.Platform(d.Platform), Vendor: model.PushVendor(d.Vendor), RegisteredAt: d.RegisteredAt}
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
