package push_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tongban/tongban/push"
)

// both manages the departments of transport and hrss.
var both = push.Owner{Client: "jiaxing-both", Departments: []string{"嘉兴市交通运输局", "嘉兴市人力资源和社会保障局"}}

// benefitRule is a rule of hrss's.
func benefitRule() push.RuleInput {
	in := elderly()
	in.Name, in.ServiceID, in.Category = "失业金提醒", "jx-unemployment-benefit", "就业"
	return in
}

// pageAll reads every page of first rules and returns their ids in order.
func pageAll(t *testing.T, w *world, owner push.Owner, status push.Status, first int) []string {
	t.Helper()
	var ids []string
	after := ""
	for range 100 {
		page, more, err := w.engine.Rules.Page(ctxT(t), owner, status, first, after)
		if err != nil {
			t.Fatalf("page after %q: %v", after, err)
		}
		if len(page) > first {
			t.Fatalf("page of %d holds %d", first, len(page))
		}
		for _, r := range page {
			ids = append(ids, r.ID)
		}
		if !more {
			return ids
		}
		after = push.RuleCursor(page[len(page)-1])
	}
	t.Fatal("paging never ended")
	return nil
}

func TestRulePagesFollowTheDepartmentIndex(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := ctxT(t)
	var transportRules, hrssRules []push.Rule
	for i := range 7 {
		in, owner, list := elderly(), transport, &transportRules
		if i%3 == 2 {
			in, owner, list = benefitRule(), hrss, &hrssRules
		}
		r, err := w.engine.Rules.Create(ctx, owner, in)
		if err != nil {
			t.Fatal(err)
		}
		*list = append(*list, r)
		if i != 3 { // two rules of one millisecond: the cursor must order them (by id)
			w.clock.Advance(time.Millisecond)
		}
	}
	transportIDs, hrssIDs := newestFirst(transportRules), newestFirst(hrssRules)
	all := append(slices.Clone(transportIDs), hrssIDs...)
	for _, first := range []int{1, 2, 3, 100} {
		if got := pageAll(t, w, transport, "", first); !slices.Equal(got, transportIDs) {
			t.Fatalf("transport in pages of %d: %v, want %v", first, got, transportIDs)
		}
		got := pageAll(t, w, both, "", first)
		if len(got) != len(all) || !sameSet(got, all) {
			t.Fatalf("both departments in pages of %d: %v, want %v", first, got, all)
		}
		if list, err := w.engine.Rules.List(ctx, both, ""); err != nil || !slices.Equal(ids(list), got) {
			t.Fatalf("List = %v, %v; want the pages' order %v", ids(list), err, got)
		}
	}
	if got := pageAll(t, w, hrss, "", 2); !slices.Equal(got, hrssIDs) {
		t.Fatalf("hrss: %v, want %v", got, hrssIDs)
	}

	// A status has its own index, kept by every change.
	pub := transportIDs[1]
	if _, err := w.engine.Rules.Publish(ctx, transport, pub); err != nil {
		t.Fatal(err)
	}
	if got := pageAll(t, w, transport, push.Published, 1); !slices.Equal(got, []string{pub}) {
		t.Fatalf("published: %v, want [%s]", got, pub)
	}
	if _, err := w.engine.Rules.Archive(ctx, transport, pub); err != nil {
		t.Fatal(err)
	}
	if got := pageAll(t, w, transport, push.Published, 1); len(got) != 0 {
		t.Fatalf("published after archiving: %v, want none", got)
	}
	if got := pageAll(t, w, transport, push.Draft, 2); slices.Contains(got, pub) || len(got) != len(transportIDs)-1 {
		t.Fatalf("drafts: %v", got)
	}

	// A rule moved to a service of another department moves between the indexes.
	moved := transportIDs[0]
	if _, err := w.engine.Rules.Update(ctx, both, moved, benefitRule()); err != nil {
		t.Fatal(err)
	}
	if got := pageAll(t, w, transport, "", 100); slices.Contains(got, moved) {
		t.Fatalf("transport still lists the moved rule: %v", got)
	}
	if got := pageAll(t, w, hrss, push.Draft, 100); !slices.Contains(got, moved) || got[0] != moved {
		t.Fatalf("hrss drafts %v, want the moved rule first (by creation)", got)
	}

	// Bad input.
	for _, c := range []struct {
		first int
		after string
		want  error
	}{{0, "", nil}, {101, "", nil}, {1, "12:", push.ErrBadCursor}, {1, "x:r_1", push.ErrBadCursor}, {1, "r_nosuchrule", push.ErrBadCursor}} {
		_, _, err := w.engine.Rules.Page(ctx, transport, "", c.first, c.after)
		var ie *push.InputError
		if c.want == nil && !errors.As(err, &ie) || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("Page(first %d, after %q) = %v", c.first, c.after, err)
		}
	}
	// A cursor of the previous build (the bare id) still works.
	page, _, err := w.engine.Rules.Page(ctx, transport, "", 1, transportIDs[2])
	if err != nil || len(page) != 1 || page[0].ID != transportIDs[3] {
		t.Fatalf("after a bare id: %v %v, want %s", ids(page), err, transportIDs[3])
	}
}

// Rules stored by a build without the index are indexed once, by IndexRules at start or by
// the first page that finds no index.
func TestRulesStoredBeforeTheIndexAreIndexed(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := ctxT(t)
	var want []string
	for range 3 {
		r, err := w.engine.Rules.Create(ctx, transport, elderly())
		if err != nil {
			t.Fatal(err)
		}
		want = append([]string{r.ID}, want...)
		w.clock.Advance(time.Second)
	}
	if _, err := w.engine.Rules.Publish(ctx, transport, want[0]); err != nil {
		t.Fatal(err)
	}
	dropIndex := func() {
		t.Helper()
		var keys []string
		for _, s := range []string{"all", "DRAFT", "PUBLISHED", "PAUSED", "ARCHIVED"} {
			keys = append(keys, w.store.Key("{rules}:dept:"+s+":嘉兴市交通运输局"))
		}
		keys = append(keys, w.store.Key("{rules}:dept:indexed"))
		for _, k := range keys { // one by one: DEL of several keys is one slot's only on a cluster
			if err := w.store.Client.Del(ctx, k).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}

	dropIndex()
	if got := pageAll(t, w, transport, "", 2); !slices.Equal(got, want) {
		t.Fatalf("first page without an index: %v, want %v", got, want)
	}
	if got := pageAll(t, w, transport, push.Published, 2); !slices.Equal(got, want[:1]) {
		t.Fatalf("published without an index: %v, want %v", got, want[:1])
	}

	dropIndex()
	// Replicas starting together all build it, and agree.
	errs := make(chan error, 3)
	for range 3 {
		go func() { _, err := w.engine.Rules.IndexRules(context.WithoutCancel(ctx)); errs <- err }()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n, err := w.engine.Rules.IndexRules(ctx); err != nil || n != 0 {
		t.Fatalf("IndexRules once built = %d, %v; want 0 (nothing to do)", n, err)
	}
	if got := pageAll(t, w, transport, "", 100); !slices.Equal(got, want) {
		t.Fatalf("after the rebuild: %v, want %v", got, want)
	}
	if got := pageAll(t, w, transport, push.Draft, 100); !slices.Equal(got, want[1:]) {
		t.Fatalf("drafts after the rebuild: %v, want %v", got, want[1:])
	}
}

func ids(rs []push.Rule) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

// newestFirst is the order of a list of rules: by creation, then by id, descending.
func newestFirst(rs []push.Rule) []string {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b push.Rule) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return ids(rs)
}

func sameSet(a, b []string) bool {
	a, b = slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))
	return slices.Equal(a, b)
}
