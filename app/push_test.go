package app

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket/wsjson"

	"github.com/tongban/tongban/internal/devidp"
	"github.com/tongban/tongban/internal/testenv"
)

// machineToken is a client-credentials access token of a dev machine client.
func machineToken(t *testing.T, h *harness, client string) string {
	t.Helper()
	r := oauthCall(t, h, "/oauth2/token", client, url.Values{"grant_type": {"client_credentials"}})
	if r.status != 200 {
		t.Fatalf("client_credentials for %s: %d %s", client, r.status, r.raw)
	}
	return r.str("access_token")
}

func idNumberOf(t *testing.T, key string) string {
	t.Helper()
	c, ok := devidp.FindCitizen(devidp.Fixtures(time.Now()), key)
	if !ok {
		t.Fatalf("no fixture %s", key)
	}
	return c.IDNumber
}

const (
	createRule = `mutation($in: PushRuleInput!) { createPushRule(input: $in) { id status version department service { id } } }`
	ingest     = `mutation($ev: [CitizenEventInput!]!) { ingestEvents(events: $ev) { accepted duplicates rejected { index code message } } }`
	inboxQuery = `{ me { unreadCount notifications(first: 10) { edges { cursor node { id title body link category readAt service { id name } } } pageInfo { hasNextPage } } } }`
)

func elderlyRuleInput() map[string]any {
	return map[string]any{
		"name": "测试规则", "serviceId": "jx-elderly-transit", "condition": "person.age >= 60",
		"triggers": []string{"residence.changed"}, "title": "{{name}}", "body": "{{service}}", "category": "出行",
	}
}

// Every push operation answers the callers who may not use it with the code that says why.
func TestPushRolesOnGraphQL(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	citizen := h.signIn("zheliban", "wang-fang").access
	platform := machineToken(t, h, "jiaxing-data")
	owner := machineToken(t, h, "jiaxing-transport")
	otherOwner := machineToken(t, h, "jiaxing-hrss")
	event := []map[string]any{{"id": "1", "type": "a.b", "idNumber": idNumberOf(t, "wang-fang"), "occurredAt": time.Now().Format(time.RFC3339)}}
	ops := []struct {
		name, query string
		vars        map[string]any
	}{
		{"createPushRule", createRule, map[string]any{"in": elderlyRuleInput()}},
		{"pushRules", `{ pushRules { edges { node { id } } } }`, nil},
		{"previewPushRule", `mutation($in: PushRuleInput!) { previewPushRule(input: $in) { valid } }`, map[string]any{"in": elderlyRuleInput()}},
		{"publishPushRule", `mutation { publishPushRule(id: "r_x") { id } }`, nil},
		{"ingestEvents", ingest, map[string]any{"ev": event}},
		{"markNotificationsRead", `mutation { markNotificationsRead(ids: ["n_x"]) }`, nil},
	}
	type caller struct{ name, token string }
	anonymous, asCitizen, asPlatform, asOwner := caller{"anonymous", ""}, caller{"citizen", citizen}, caller{"data platform", platform}, caller{"service owner", owner}
	cases := []struct {
		op     string
		caller caller
		code   string
	}{
		{"createPushRule", anonymous, "UNAUTHENTICATED"},
		{"createPushRule", asCitizen, "FORBIDDEN"},
		{"createPushRule", asPlatform, "FORBIDDEN"},
		{"createPushRule", caller{"another department's owner", otherOwner}, "FORBIDDEN"},
		{"pushRules", asCitizen, "FORBIDDEN"},
		{"previewPushRule", asCitizen, "FORBIDDEN"},
		{"previewPushRule", caller{"another department's owner", otherOwner}, "FORBIDDEN"},
		{"publishPushRule", asPlatform, "FORBIDDEN"},
		{"publishPushRule", asOwner, "NOT_FOUND"},
		{"ingestEvents", anonymous, "UNAUTHENTICATED"},
		{"ingestEvents", asCitizen, "FORBIDDEN"},
		{"ingestEvents", asOwner, "FORBIDDEN"},
		{"markNotificationsRead", anonymous, "UNAUTHENTICATED"},
		{"markNotificationsRead", asPlatform, "UNAUTHENTICATED"},
	}
	for _, c := range cases {
		t.Run(c.op+" as "+c.caller.name, func(t *testing.T) {
			for _, op := range ops {
				if op.name != c.op {
					continue
				}
				r := h.gql(op.query, op.vars, c.caller.token)
				if r.code() != c.code {
					t.Fatalf("got %s (%s), want %s", r.code(), r.Raw, c.code)
				}
			}
		})
	}
}

func TestRuleProblemsOnGraphQL(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	owner := machineToken(t, h, "jiaxing-transport")
	in := elderlyRuleInput()
	in["condition"] = "person.age >= 60 &&\n  person.hukou.citty == \"嘉兴\""
	r := h.gql(createRule, map[string]any{"in": in}, owner)
	if r.code() != "BAD_USER_INPUT" {
		t.Fatalf("got %s", r.Raw)
	}
	ext := r.Errors[0]["extensions"].(map[string]any)
	ps, _ := ext["problems"].([]any)
	if ext["field"] != "condition" || len(ps) == 0 {
		t.Fatalf("extensions %v", ext)
	}
	p := ps[0].(map[string]any)
	if p["line"] != float64(2) || !strings.Contains(p["message"].(string), "citty") {
		t.Fatalf("problem %v, want line 2 naming citty", p)
	}

	preview := h.gql(`mutation($in: PushRuleInput!, $s: [JSON!]) { previewPushRule(input: $in, samples: $s) { valid problems { message line column } matches estimatedAudience } }`,
		map[string]any{"in": in, "s": []any{map[string]any{"age": 70}}}, owner)
	pp, _ := preview.field("previewPushRule", "problems").([]any)
	if preview.field("previewPushRule", "valid") != false || len(pp) != 1 || pp[0].(map[string]any)["line"] != float64(2) {
		t.Fatalf("preview of a bad rule: %s", preview.Raw)
	}
}

func TestPreviewPushRule(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil, WithNoise(zeroNoise{}))
	// Two people the store knows: 陈建国 (嘉兴, 60 this month) and 王芳 (杭州, 41).
	h.signIn("zheliban", "chen-jianguo")
	h.signIn("zheliban", "wang-fang")
	owner := machineToken(t, h, "jiaxing-transport")
	in := elderlyRuleInput()
	in["condition"] = `person.age >= 60 && person.hukou.city == "嘉兴"`
	samples := []any{
		map[string]any{"birthDate": "1950-01-01", "hukou": map[string]any{"code": "330402"}},
		map[string]any{"age": 59, "hukou": map[string]any{"city": "嘉兴"}},
		map[string]any{"age": 80, "hukou": map[string]any{"code": "310115"}},
	}
	r := h.gql(`mutation($in: PushRuleInput!, $s: [JSON!]) { previewPushRule(input: $in, samples: $s) { valid problems { message } matches estimatedAudience audience { status count fewerThan epsilon budgetRemaining } } }`,
		map[string]any{"in": in, "s": samples}, owner)
	if len(r.Errors) > 0 {
		t.Fatal(r.Raw)
	}
	// Two stored people, one a match: below the threshold of 20, reported as fewer than 20.
	got, _ := json.Marshal(r.field("previewPushRule"))
	if string(got) != `{"audience":{"budgetRemaining":0.9,"count":null,"epsilon":0.1,"fewerThan":20,"status":"FEWER_THAN_THRESHOLD"},"estimatedAudience":null,"matches":[true,false,false],"problems":[],"valid":true}` {
		t.Fatalf("preview %s", got)
	}
	bad := h.gql(`mutation($in: PushRuleInput!, $s: [JSON!]) { previewPushRule(input: $in, samples: $s) { valid } }`,
		map[string]any{"in": in, "s": []any{map[string]any{"salary": 1}}}, owner)
	if bad.code() != "BAD_USER_INPUT" || !strings.Contains(bad.message(), "samples[0]") {
		t.Fatalf("a sample with an unknown key: %s", bad.Raw)
	}
}

// The README's walk-through: the data platform sends 王芳's birth registration, the dev sample
// rule matches, and the notification is in her inbox, unread until she reads it.
func TestEventReachesTheInbox(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	in := h.signIn("zheliban", "wang-fang")
	platform := machineToken(t, h, "jiaxing-data")
	ev := []map[string]any{{"id": "birth-2026-0001", "type": "birth.registered", "idNumber": idNumberOf(t, "wang-fang"),
		"occurredAt": time.Now().Add(-time.Hour).Format(time.RFC3339), "attributes": map[string]any{"childName": "小明"}}}
	r := h.gql(ingest, map[string]any{"ev": ev}, platform)
	if r.field("ingestEvents", "accepted") != float64(1) {
		t.Fatalf("ingest: %s", r.Raw)
	}
	if again := h.gql(ingest, map[string]any{"ev": ev}, platform); again.field("ingestEvents", "duplicates") != float64(1) {
		t.Fatalf("the same event again: %s", again.Raw)
	}
	box := h.gql(inboxQuery, nil, in.access)
	edges, _ := box.field("me", "notifications", "edges").([]any)
	if box.field("me", "unreadCount") != float64(1) || len(edges) != 1 {
		t.Fatalf("inbox: %s", box.Raw)
	}
	node := edges[0].(map[string]any)["node"].(map[string]any)
	if node["title"] != "恭喜王芳喜添宝宝" || node["service"].(map[string]any)["id"] != "zj-newborn" || node["readAt"] != nil {
		t.Fatalf("notification %v", node)
	}
	read := h.gql(`mutation($ids: [ID!]!) { markNotificationsRead(ids: $ids) }`, map[string]any{"ids": []string{node["id"].(string)}}, in.access)
	if read.field("markNotificationsRead") != float64(1) {
		t.Fatalf("mark read: %s", read.Raw)
	}
	if after := h.gql(inboxQuery, nil, in.access); after.field("me", "unreadCount") != float64(0) {
		t.Fatalf("after reading: %s", after.Raw)
	}
	// Another person's session cannot mark it.
	other := h.signIn("suishenban", "liu-yang")
	if n := h.gql(`mutation($ids: [ID!]!) { markNotificationsRead(ids: $ids) }`, map[string]any{"ids": []string{node["id"].(string)}}, other.access); n.field("markNotificationsRead") != float64(0) {
		t.Fatalf("another person marked it: %s", n.Raw)
	}
}

// A subscription held by instance 1 receives the notification created on instance 2.
func TestSubscriptionHearsAnotherInstance(t *testing.T) {
	t.Parallel()
	store := testenv.Redis(t)
	one := startIdentity(t, nil, WithStore(store))
	two := startIdentity(t, nil, WithStore(store))
	in := one.signIn("zheliban", "wang-fang")
	c, _, err := dialWS(t, one, "", map[string]any{"Authorization": "Bearer " + in.access})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := readWS(t, c); err != nil || m.Type != "connection_ack" {
		t.Fatalf("want connection_ack, got %+v %v", m, err)
	}
	ctx := context.Background()
	if err := wsjson.Write(ctx, c, map[string]any{"id": "s", "type": "subscribe",
		"payload": map[string]any{"query": "subscription { notificationReceived { title service { id } } }"}}); err != nil {
		t.Fatal(err)
	}
	// The subscription is set up once the resolver ran, and instance one listens for
	// notifications from its first subscriber on.
	channel := store.Key("push:notify")
	testenv.Eventually(t, 10*time.Second, func() bool { return subscribers(t, store, channel) > 0 }, "the subscription starts")
	platform := machineToken(t, two, "jiaxing-data")
	ev := []map[string]any{{"id": "birth-2026-0002", "type": "birth.registered", "idNumber": idNumberOf(t, "wang-fang"),
		"occurredAt": time.Now().Format(time.RFC3339)}}
	if r := two.gql(ingest, map[string]any{"ev": ev}, platform); r.field("ingestEvents", "accepted") != float64(1) {
		t.Fatalf("ingest on instance 2: %s", r.Raw)
	}
	m, err := readWS(t, c)
	if err != nil || m.Type != "next" || !strings.Contains(string(m.Payload), "zj-newborn") {
		t.Fatalf("want the notification on instance 1, got %+v %v", m, err)
	}
}
