package graph

import (
	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/graph/model"
	"github.com/tongban/tongban/push"
	"github.com/tongban/tongban/push/devices"
	"github.com/tongban/tongban/push/miniprogram"
)

// What a field costs against graphql.complexity_limit. gqlgen's default, 1 plus the fields
// selected, is right for a field that returns one thing; a list must cost more the more items
// it may return, or a page of 100 costs as much as a page of 1. Every field that returns a
// list of objects or a connection has a function here (TestEveryListFieldHasAComplexity
// fails on one that has none), of one of three kinds:
//
//   - eachItem: items that do work of their own (a rule's stats are a Redis read per rule,
//     even batched into one pipeline) cost their selection each: 1 + n × the selection.
//   - fromOneRead: items that come from the list's one read and resolve from memory (the
//     catalog, an audit page, the inbox, a person's consents) cost the selection once plus
//     one per item: 1 + the selection + n. Multiplying would overcharge them: the catalog's
//     full listing at first: 100 would exceed the limit of 1000.
//   - fromMemory: items held before any request (the configuration's apps) cost the
//     selection once: serving them reads nothing.
//
// The last two are sound only because nothing inside their items is itself a list of
// objects, whose cost would then be counted once instead of n times;
// TestListsFromOneReadHoldNoLists keeps it so.
//
// n is the page's `first`, or the list's bound when it has no argument.

// eachItem is the cost of a list of n items that each cost their selection.
func eachItem(child, n int) int { return 1 + n*child }

// fromOneRead is the cost of a list of n items read at once and resolved from memory.
func fromOneRead(child, n int) int { return 1 + child + n }

// pageBound is a page's size as the cost counts it: first (or the default), within 0..limit.
// An out-of-range first is refused by the resolver; it must not make the cost negative first.
func pageBound(first *int, limit int) int { return min(max(pageSize(first), 0), limit) }

// fromMemory is the cost of a list held in memory before any request (the configuration):
// its items cost what they select, once, since serving them reads nothing.
func fromMemory(child int) int { return 1 + child }

// countedByConnection is the cost of a connection's edges: the connection (its field's
// function) already counts the items, so the edges count once.
func countedByConnection(child int) int { return 1 + child }

// listCosts is every list field's cost function. apps is how many member apps there are:
// the bound of the lists that have at most one item per app.
func listCosts(apps int) ComplexityRoot {
	var c ComplexityRoot
	oneRead := func(n int) func(int) int { return func(child int) int { return fromOneRead(child, n) } }

	// Connections.
	c.Person.Activity = activityComplexity // fromOneRead, an audit page (activity.go)
	c.Query.Services = servicesComplexity  // fromOneRead, the catalog (services.go)
	c.Person.Notifications = func(child int, first *int, _ *string, _ *bool) int {
		return fromOneRead(child, pageBound(first, maxPage)) // the inbox is one read
	}
	c.Query.PushRules = func(child int, first *int, _ *string, _ *model.RuleStatus) int {
		return eachItem(child, pageBound(first, push.MaxRulePage)) // each rule's stats
	}
	c.ActivityConnection.Edges = countedByConnection
	c.ServiceConnection.Edges = countedByConnection
	c.NotificationConnection.Edges = countedByConnection
	c.PushRuleConnection.Edges = countedByConnection

	// Lists without arguments, by their bound.
	c.Query.Apps = fromMemory                                                                                // the configuration: no read at all
	c.Person.Accounts = oneRead(apps)                                                                        // at most one per app, in the person record
	c.Person.Consents = oneRead(apps)                                                                        // at most one per app, one read
	c.Person.ConnectedApps = oneRead(apps)                                                                   // at most one per app, from one listing of grants
	c.Person.Sessions = oneRead(config.MaxSessionsPerPerson)                                                 // sessions.max_per_person at most, one listing
	c.AppSwitch.ConsentText = func(child int, _ *string) int { return fromMemory(child) }                    // the switch's own scopes
	c.Person.Devices = oneRead(devices.DefaultMaxPerPerson)                                                  // the devices kept per person, one read
	c.Person.MiniPrograms = func(child int) int { return eachItem(child, miniprogram.MaxBindingsPerPerson) } // one read of them all
	c.MiniProgram.Subscriptions = fromMemory                                                                 // read with their mini-program
	c.Mutation.RecordSubscriptions = func(child int, _ string, _ model.MiniProgramPlatform, _ []string, _ model.SubscriptionKind) int {
		return fromOneRead(child, miniprogram.MaxTemplatesPerCall) // the call's own templates
	}
	c.RulePreview.Problems = oneRead(maxRuleProblems)               // the compiler's, in memory
	c.IngestResult.Rejected = oneRead(push.MaxEventsPerCall)        // the call's own events, in memory
	c.RuleAuthoring.Services = fromMemory                           // the in-memory catalog, no read
	c.RuleAuthoring.Facts = fromMemory                              // the catalog's declarations, no read
	c.Query.FederationSubordinates = oneRead(MaxSubordinatesListed) // one read of the registry
	return c
}

// maxMemberApps is the bound the cost assumes of the member apps (providers and clients):
// the configuration sets no limit, and a federation of regions' apps has tens. The directory
// is not asked: it may be any implementation, and the cost must not depend on calling it.
const maxMemberApps = 64

// maxRuleProblems bounds the problems a preview reports: push/condition stops at 20 and adds
// one saying how many more.
const maxRuleProblems = 21
