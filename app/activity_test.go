package app

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/testenv"
)

const activityQuery = `query($first: Int, $after: String) { me { activity(first: $first, after: $after) {
  edges { cursor node { id kind fromApp { id } toApp { id } at } }
  pageInfo { hasNextPage endCursor } } } }`

// activityEntry is one edge of me.activity as the test reads it.
type activityEntry struct{ kind, from, to, at, cursor string }

func (e activityEntry) String() string { return fmt.Sprintf("%s %s->%s", e.kind, e.from, e.to) }

// actPage reads one page of me.activity and fails the test on an error.
func actPage(t *testing.T, h *harness, token string, vars map[string]any) ([]activityEntry, bool, string) {
	t.Helper()
	r := h.gql(activityQuery, vars, token)
	if len(r.Errors) > 0 {
		t.Fatalf("me.activity: %s", r.Raw)
	}
	conn, _ := r.field("me", "activity").(map[string]any)
	edges, _ := conn["edges"].([]any)
	var out []activityEntry
	for _, e := range edges {
		edge := e.(map[string]any)
		node := edge["node"].(map[string]any)
		app := func(k string) string {
			a, _ := node[k].(map[string]any)
			s, _ := a["id"].(string)
			return s
		}
		if id, _ := node["id"].(string); id == "" {
			t.Errorf("an entry without an id: %v", node)
		}
		out = append(out, activityEntry{kind: node["kind"].(string), from: app("fromApp"), to: app("toApp"),
			at: node["at"].(string), cursor: edge["cursor"].(string)})
	}
	info := conn["pageInfo"].(map[string]any)
	end, _ := info["endCursor"].(string)
	return out, info["hasNextPage"].(bool), end
}

func TestActivityTrailOfASwitch(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	in := h.signIn("zheliban", "wang-fang")
	if r := h.gql(grantConsent, map[string]any{"a": "suishenban", "s": []string{"profile", "phone", "id_number"}}, in.access); len(r.Errors) > 0 {
		t.Fatal(r.Raw)
	}
	r := h.gql(switchApp, map[string]any{"t": "suishenban"}, in.access)
	launch := r.str("switchApp", "launchUrl")
	if launch == "" {
		t.Fatalf("switchApp: %s", r.Raw)
	}
	tok, idt := newPartner(t, h, "suishenban").arrive(launch)

	all, more, end := actPage(t, h, in.access, nil)
	want := []string{"SWITCH_REDEEMED zheliban->suishenban", "SWITCH_ISSUED zheliban->suishenban",
		"CONSENT_GRANTED ->suishenban", "SIGNED_IN ->zheliban"}
	if got := fmt.Sprint(all); got != fmt.Sprint(want) || more || end != all[len(all)-1].cursor {
		t.Fatalf("activity %v (more=%v, end=%q), want %v", got, more, end, want)
	}
	for i := 1; i < len(all); i++ {
		newer, err := time.Parse(time.RFC3339Nano, all[i-1].at)
		if err != nil {
			t.Fatal(err)
		}
		older, err := time.Parse(time.RFC3339Nano, all[i].at)
		if err != nil {
			t.Fatal(err)
		}
		if newer.Before(older) || older.IsZero() {
			t.Errorf("not newest first: %s at %s, then %s at %s", all[i-1], all[i-1].at, all[i], all[i].at)
		}
	}

	// Two at a time.
	page1, more, end := actPage(t, h, in.access, map[string]any{"first": 2})
	if fmt.Sprint(page1) != fmt.Sprint(all[:2]) || !more || end != page1[1].cursor {
		t.Fatalf("first page %v more=%v end=%q", page1, more, end)
	}
	page2, more, end2 := actPage(t, h, in.access, map[string]any{"first": 2, "after": end})
	if fmt.Sprint(page2) != fmt.Sprint(all[2:]) || more || end2 != page2[1].cursor {
		t.Fatalf("second page %v more=%v", page2, more)
	}
	if page3, more, end3 := actPage(t, h, in.access, map[string]any{"first": 2, "after": end2}); len(page3) != 0 || more || end3 != "" {
		t.Fatalf("past the end: %v more=%v end=%q", page3, more, end3)
	}

	// Refusals a client can act on.
	for _, vars := range []map[string]any{
		{"after": "not-a-cursor"}, {"after": "MTIz"}, {"first": 0}, {"first": 101}, {"first": -5},
	} {
		if r := h.gql(activityQuery, vars, in.access); r.code() != "BAD_USER_INPUT" {
			t.Errorf("%v: %s", vars, r.Raw)
		}
	}

	// A consent withdrawn is the newest entry.
	if r := h.gql(`mutation($a: ID!) { revokeConsent(app: $a) }`, map[string]any{"a": "suishenban"}, in.access); len(r.Errors) > 0 {
		t.Fatal(r.Raw)
	}
	if last, _, _ := actPage(t, h, in.access, map[string]any{"first": 1}); fmt.Sprint(last) != "[CONSENT_REVOKED ->suishenban]" {
		t.Errorf("after revokeConsent: %v", last)
	}

	// Another person's trail is separate: they see only their own sign-in.
	other := h.signIn("sufuban", "chen-jianguo")
	if theirs, _, _ := actPage(t, h, other.access, nil); fmt.Sprint(theirs) != "[SIGNED_IN ->sufuban]" {
		t.Errorf("another person's activity: %v", theirs)
	}

	// Nothing in any stream is a secret: not the ticket, not a token, not the ID number.
	var idClaims struct {
		IDNumber string `json:"id_number"`
	}
	if err := idt.Claims(&idClaims); err != nil || idClaims.IDNumber == "" {
		t.Fatalf("id_number claim: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	secrets := map[string]string{
		"ticket": mustQuery(t, launch, "login_hint"), "access token": tok.AccessToken, "refresh token": tok.RefreshToken,
		"ID token": raw, "session access token": in.access, "session refresh token": in.refresh, "ID number": idClaims.IDNumber,
		"ID number's last digits": idClaims.IDNumber[len(idClaims.IDNumber)-6:],
	}
	ctx := context.Background()
	store := h.app.Store
	streams := 0
	for _, key := range testenv.Keys(t, store) {
		if typ := store.Client.Type(ctx, key).Val(); typ != "stream" {
			continue
		}
		streams++
		msgs, err := store.Client.XRange(ctx, key, "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			var fields []string
			for k, v := range m.Values {
				fields = append(fields, k)
				for what, s := range secrets {
					if s != "" && strings.Contains(fmt.Sprint(v), s) {
						t.Errorf("%s entry %s holds the %s in %s", key, m.ID, what, k)
					}
				}
			}
			slices.Sort(fields)
			// The trails' shape; other streams (the logout jobs that revokeConsent queued)
			// are only checked for secrets.
			if !strings.HasSuffix(key, ":activity") && key != store.Key("audit") {
				continue
			}
			if f := strings.Join(fields, ","); f != "at,from,kind,to" && f != "at,from,kind,person,to" {
				t.Errorf("%s entry %s has fields %s", key, m.ID, f)
			}
		}
	}
	if streams < 3 { // two persons' trails and the operators' stream (and the logout jobs)
		t.Errorf("%d streams in the store, want the two persons' and the operators'", streams)
	}
	if n := store.Client.XLen(ctx, store.Key("audit")).Val(); n != 6 {
		t.Errorf("operators' stream holds %d entries, want 6", n)
	}
}
