package app

import (
	"context"
	"fmt"
	"time"

	"github.com/tongban/tongban/push"
)

// buildPush builds 免申即享's engine on the store and the persons of identity.
func (a *App) buildPush(o options) error {
	loc, err := a.cfg.Push.Location()
	if err != nil {
		return fmt.Errorf("app: push: %w", err)
	}
	var apps []string
	for _, ap := range a.cfg.Apps() {
		apps = append(apps, ap.ID)
	}
	a.Push, err = push.New(push.Options{
		Store: a.Store, People: a.Identity.Persons, Catalog: a.Catalog, Apps: apps,
		Location: loc, Now: o.now, Logger: a.log,
	})
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	return nil
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
