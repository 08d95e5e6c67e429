package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	firebase "firebase.google.com/go/v4"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"

	"github.com/tongban/tongban/internal/fakefcm"
	"github.com/tongban/tongban/push"
	"github.com/tongban/tongban/push/catalog"
	"github.com/tongban/tongban/push/delivery"
	"github.com/tongban/tongban/push/devices"
	"github.com/tongban/tongban/push/prefs"
)

// WithNoise draws the audience estimates' noise from r instead of crypto/rand, so that a test
// can repeat an attack over many independent trials quickly and the same way every run.
func WithNoise(r io.Reader) Option { return func(o *options) { o.noise = r } }

// devFCMProject is the FCM project of dev mode's local sink when the configuration names none.
const devFCMProject = "tongban-dev"

// buildPush builds 免申即享's engine on the store and the persons of identity: devices,
// preferences, and the FCM sender (in dev mode, the local sink at /dev/fcm/).
func (a *App) buildPush(o options) error {
	p := a.cfg.Push
	loc, err := p.Location()
	if err != nil {
		return fmt.Errorf("app: push: %w", err)
	}
	var apps []string
	for _, ap := range a.cfg.Apps() {
		apps = append(apps, ap.ID)
	}
	kek, err := a.cfg.Secrets.KEK()
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	if a.Devices, err = devices.New(devices.Options{Store: a.Store, KEK: kek, Apps: apps, Now: o.now}); err != nil {
		return fmt.Errorf("app: %w", err)
	}
	if a.Prefs, err = prefs.New(a.Store, prefs.Defaults{TimeZone: p.TimeZone, QuietHours: p.QuietHours}, catalog.Categories()); err != nil {
		return fmt.Errorf("app: %w", err)
	}
	sender, err := a.buildSender()
	if err != nil {
		return err
	}
	channels, err := a.buildChannels(kek)
	if err != nil {
		return err
	}
	a.Push, err = push.New(push.Options{
		Store: a.Store, People: a.Identity.Persons, Catalog: a.Catalog, Apps: apps,
		Location: loc, Now: o.now, Logger: a.log,
		MaxFactsPerPerson: p.MaxFactsPerPerson, MaxFactBytesPerPerson: p.MaxFactBytesPerPerson,
		Privacy: push.Privacy{Epsilon: p.Privacy.Epsilon, Threshold: p.Privacy.Threshold, DailyBudget: p.Privacy.DailyBudget, Random: o.noise},
	})
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	a.Delivery, err = delivery.New(delivery.Options{
		Store: a.Store, Inbox: a.Push, Counter: a.Push.Rules, Sender: sender, Channels: channels, Subscriptions: a.MiniPrograms,
		Devices: a.Devices, Prefs: a.Prefs,
		Now: o.now, Logger: a.log, DailyCap: p.DailyCap, Workers: p.Workers, Registerer: a.Registry, Tracer: a.tracer,
	})
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	// Purpose limitation holds for rules published before the catalog changed, too.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.Push.PauseUnreadableRules(ctx); err != nil {
		return fmt.Errorf("app: %w", err)
	}
	// Rules stored before the department index existed are indexed once (a page would too).
	if _, err := a.Push.Rules.IndexRules(ctx); err != nil {
		return fmt.Errorf("app: %w", err)
	}
	return nil
}

// buildSender is the Firebase Admin SDK's messaging client for push.fcm: credentials from
// credentials_file as Google's SDK reads them, the endpoint when one is set. In dev mode
// without credentials it talks to the local FCM sink this process serves at /dev/fcm/, with a
// token the sink accepts. Without a project outside dev mode there is no sender: notifications
// stay in the inbox, and a log line says so.
func (a *App) buildSender() (delivery.Sender, error) {
	f := a.cfg.Push.FCM
	var opts []option.ClientOption
	switch {
	case f.CredentialsFile != "":
		opts = append(opts, option.WithCredentialsFile(f.CredentialsFile))
	case a.cfg.Dev:
		if f.ProjectID == "" {
			f.ProjectID = devFCMProject
		}
		a.FCMSink = fakefcm.NewServer(f.ProjectID)
		if f.Endpoint == "" {
			f.Endpoint = a.cfg.PublicURL + "/dev/fcm/v1"
		}
		opts = append(opts, option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "dev"})))
	default:
		a.log.Warn("push.fcm is not configured: notifications stay in the inbox and nothing is pushed")
		return nil, nil
	}
	if f.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(f.Endpoint))
	}
	fb, err := firebase.NewApp(context.Background(), &firebase.Config{ProjectID: f.ProjectID}, opts...)
	if err != nil {
		return nil, fmt.Errorf("app: push.fcm: %w", err)
	}
	client, err := fb.Messaging(context.Background())
	if err != nil {
		return nil, fmt.Errorf("app: push.fcm: %w", err)
	}
	return client, nil
}

// serveFCMSink is dev mode's local FCM: the HTTP v1 API the SDK sends to, and what it received.
func (a *App) serveFCMSink(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/dev/fcm/messages" {
		a.FCMSink.MessagesHandler().ServeHTTP(w, r)
		return
	}
	a.FCMSink.Handler().ServeHTTP(w, r)
}

// devRules are dev mode's sample rules, published at start by the departments that own their
// services, so that the README's walk-through has something to match.
var devRules = []struct {
	owner push.Owner
	rule  push.RuleInput
}{
	{
		owner: push.Owner{Client: "jiaxing-transport", Departments: []string{"嘉兴市交通运输局"}},
		rule: push.RuleInput{
			Name:      "嘉兴户籍或居住、年满60周岁 → 老年人乘车优惠",
			ServiceID: "jx-elderly-transit",
			Condition: `person.age >= 60 && (person.hukou.city == "嘉兴" || person.residence.city == "嘉兴")`,
			Triggers:  []string{"residence.changed", "person.birthday"},
			Backfill:  true,
			Title:     "{{name}}，您可以免费乘坐嘉兴公交",
			Body:      "您已年满60周岁，可享受{{service}}，无需申请，点击即可领取电子乘车码。",
			Category:  "出行",
		},
	},
	{
		owner: push.Owner{Client: "zhejiang-health", Departments: []string{"浙江省卫生健康委员会"}},
		rule: push.RuleInput{
			Name:      "新生儿出生登记 → 新生儿出生一件事",
			ServiceID: "zj-newborn",
			Condition: `event.type == "birth.registered" && person.hukou.province == "浙江"`,
			Triggers:  []string{"birth.registered"},
			Title:     "恭喜{{name}}喜添宝宝",
			Body:      "{{service}}：出生医学证明、户口登记、医保参保和社保卡一次办好，点击查看。",
			Category:  "婚育",
		},
	},
}

// seedDevRules creates and publishes the sample rules unless a rule of the same name exists
// (dev mode on a real Redis keeps them across restarts). A configured catalog without a
// sample rule's service gets no such rule.
func (a *App) seedDevRules(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, d := range devRules {
		if _, ok := a.Catalog.Service(d.rule.ServiceID); !ok {
			continue
		}
		existing, err := a.Push.Rules.List(ctx, d.owner, "")
		if err != nil {
			return err
		}
		found := false
		for _, r := range existing {
			found = found || r.Name == d.rule.Name
		}
		if found {
			continue
		}
		r, err := a.Push.Rules.Create(ctx, d.owner, d.rule)
		if err != nil {
			return fmt.Errorf("app: sample rule %q: %w", d.rule.Name, err)
		}
		if _, err := a.Push.Rules.Publish(ctx, d.owner, r.ID); err != nil {
			return fmt.Errorf("app: sample rule %q: %w", d.rule.Name, err)
		}
	}
	return nil
}
