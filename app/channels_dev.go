package app

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/tongban/tongban/push/channel"
)

// devChannelRoutes serves dev mode's local vendor services and what each received:
//
//	/dev/hms/push/…          HarmonyOS Push Kit's v3 API      GET /dev/hms/messages
//	(its own TLS port)       APNs' HTTP/2 API                 GET /dev/apns/messages
//	/dev/wechat/…            WeChat's server API              GET /dev/wechat/messages
//	/dev/alipay/gateway.do   Alipay's open-platform gateway   GET /dev/alipay/messages
//
// and the mini-program side a phone would play, so the walk-through can sign a mini-program in
// and tap "allow" without one:
//
//	GET  /dev/miniprograms                          the dev mini-programs and their templates
//	POST /dev/miniprograms/{platform}/{app}/login   {"user"} → {"code"}: wx.login / my.getAuthCode
//	POST /dev/miniprograms/{platform}/{app}/accept  {"user", "templateIds", "oneTime"}: the
//	                                                person taps "allow" (requestSubscribeMessage)
func (a *App) devChannelRoutes(route func(pattern, name string, h http.Handler)) {
	d := a.devSinks
	if d == nil {
		return
	}
	if d.HMS != nil {
		route("/dev/hms/push/", "dev_hms", d.HMS.Handler())
		route("GET /dev/hms/messages", "dev_hms_messages", d.HMS.MessagesHandler())
	}
	if d.APNs != nil {
		route("GET /dev/apns/messages", "dev_apns_messages", d.APNs.MessagesHandler())
	}
	if d.WeChat != nil {
		route("/dev/wechat/", "dev_wechat", d.WeChat.Handler())
		route("GET /dev/wechat/messages", "dev_wechat_messages", d.WeChat.MessagesHandler())
	}
	if d.Alipay != nil {
		route("/dev/alipay/gateway.do", "dev_alipay", d.Alipay.Handler())
		route("GET /dev/alipay/messages", "dev_alipay_messages", d.Alipay.MessagesHandler())
	}
	route("GET /dev/miniprograms", "dev_miniprograms", http.HandlerFunc(d.serveList))
	route("POST /dev/miniprograms/{platform}/{app}/{step}", "dev_miniprogram_step", http.HandlerFunc(d.serveStep))
}

type devTemplate struct {
	Category   string `json:"category"`
	TemplateID string `json:"templateId"`
	LongTerm   bool   `json:"longTerm"`
}

type devMiniProgram struct {
	Platform  string        `json:"platform"`
	App       string        `json:"app"`
	AppID     string        `json:"appId"`
	Templates []devTemplate `json:"templates"`
}

func (d *devSinks) serveList(w http.ResponseWriter, r *http.Request) {
	var out []devMiniProgram
	for _, kind := range []channel.Kind{channel.WeChat, channel.Alipay} {
		apps := d.appIDs[kind]
		for _, app := range slices.Sorted(maps.Keys(apps)) {
			mp := devMiniProgram{Platform: strings.ToUpper(string(kind)), App: app, AppID: apps[app], Templates: []devTemplate{}}
			for _, t := range d.templates {
				if t.Kind == kind && t.App == app {
					mp.Templates = append(mp.Templates, devTemplate{t.Category, t.ID, t.LongTerm})
				}
			}
			out = append(out, mp)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (d *devSinks) serveStep(w http.ResponseWriter, r *http.Request) {
	kind := channel.Kind(strings.ToLower(r.PathValue("platform")))
	appID := d.appIDs[kind][r.PathValue("app")]
	if appID == "" || (kind == channel.WeChat && d.WeChat == nil) || (kind == channel.Alipay && d.Alipay == nil) {
		http.Error(w, "no dev mini-program of that platform and app; GET /dev/miniprograms lists them", http.StatusNotFound)
		return
	}
	var in struct {
		User        string   `json:"user"`
		TemplateIDs []string `json:"templateIds"`
		OneTime     bool     `json:"oneTime"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<14)).Decode(&in); err != nil || in.User == "" || len(in.User) > 64 {
		http.Error(w, `want JSON {"user": "<the person's id on the platform, up to 64 characters>", …}`, http.StatusBadRequest)
		return
	}
	switch r.PathValue("step") {
	case "login":
		code := ""
		if kind == channel.WeChat {
			code = d.WeChat.LoginCode(appID, in.User)
		} else {
			code = d.Alipay.LoginCode(appID, in.User)
		}
		writeJSON(w, http.StatusOK, map[string]string{"code": code})
	case "accept":
		if len(in.TemplateIDs) == 0 || len(in.TemplateIDs) > 10 {
			http.Error(w, `want "templateIds": one to ten templates the person allows`, http.StatusBadRequest)
			return
		}
		for _, t := range in.TemplateIDs {
			if kind == channel.WeChat {
				d.WeChat.Accept(appID, in.User, t, in.OneTime)
			} else {
				d.Alipay.Subscribe(appID, in.User, t, in.OneTime)
			}
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "want …/login or …/accept", http.StatusNotFound)
	}
}
