package app

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tongban/tongban/app/console"
	"github.com/tongban/tongban/internal/idnumber"
	"github.com/tongban/tongban/internal/testenv"
	"github.com/tongban/tongban/internal/webui"
)

var updateConsoleScreenshot = flag.Bool("update-console-screenshot", false, "write docs/img/console.png from TestConsoleBrowserStory")

// consoleSeedPeople has the dev data platform report n people of 嘉兴南湖区 born in 1950 (so 60
// and over), for the estimate to count and the backfill to scan.
func consoleSeedPeople(t *testing.T, h *harness, n int) {
	t.Helper()
	platform := machineToken(t, h, "jiaxing-data")
	var events []map[string]any
	for i := range n {
		num, err := idnumber.Build("330402", time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC), 100+i)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, map[string]any{
			"id": fmt.Sprintf("console-%d", i), "type": "residence.changed", "idNumber": num.String(),
			"occurredAt": time.Now().Add(-time.Hour).Format(time.RFC3339), "attributes": map[string]any{"disabilityLevel": 2},
		})
	}
	r := h.gql(ingest, map[string]any{"ev": events}, platform)
	if got, _ := r.field("ingestEvents", "accepted").(float64); int(got) != n {
		t.Fatalf("ingest %d people: %+v", n, r)
	}
}

// consoleDo runs steps, failing the test with what it was doing.
func consoleDo(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// consoleEval evaluates expr in the page and decodes its value.
func consoleEval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// consoleWait polls a JavaScript condition until it holds, failing with what the page says.
func consoleWait(t *testing.T, ctx context.Context, what, cond string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+cond+")"))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('main').innerText`))
			testenv.Screenshot(t, ctx, "timeout")
			t.Fatalf("waiting for %s (%s): %v; the page says:\n%s", what, cond, err, page)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func consoleText(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	return consoleEval[string](t, ctx, fmt.Sprintf(`(document.querySelector(%q) || {innerText: ''}).innerText`, css))
}

// squiggle is what the page draws for a problem: its line and column, the text it underlines
// and where it sits in the editor, with the editor's metrics to check the place against.
type squiggle struct {
	Line, Column       int
	Text               string
	Top, Left          float64
	LineHeight, CharW  float64
	PadTop, PadLeft    float64
	ListText, ListLine string
}

const consoleSquiggleJS = `(() => {
  const s = document.querySelector('#overlay .squiggle');
  if (!s) return null;
  const ov = document.getElementById('overlay');
  const cs = getComputedStyle(ov);
  const probe = document.createElement('span');
  probe.textContent = '0000000000';
  ov.append(probe);
  const charW = probe.getBoundingClientRect().width / 10;
  probe.remove();
  const o = ov.getBoundingClientRect(), r = s.getBoundingClientRect();
  const li = document.querySelector('#problems li[data-line]');
  return { line: +s.dataset.line, column: +s.dataset.column, text: s.textContent,
    top: r.top - o.top, left: r.left - o.left, lineHeight: parseFloat(cs.lineHeight), charW,
    padTop: parseFloat(cs.paddingTop), padLeft: parseFloat(cs.paddingLeft),
    listText: li ? li.innerText : '', listLine: li ? li.dataset.line + ':' + li.dataset.column : '' };
})()`

type consoleTiming struct {
	Condition                       string
	RoundTrip, KeystrokeToUnderline float64
	Problems                        int
}

// The service owner's story in a real browser: open the console, sign in as a dev owner, type a
// condition with an error and see it underlined at its line and column, fix it, see the
// samples match or not and the private estimate, create and publish the rule and watch its
// backfill finish, pause and archive it; in English too, and at a phone's width.
func TestConsoleBrowserStory(t *testing.T) {
	began := time.Now()
	h := startIdentity(t, nil)
	const people = 80
	consoleSeedPeople(t, h, people)
	ctx := testenv.Browser(t, 3*time.Minute)
	defer func() { t.Logf("console story: wall time %v", time.Since(began).Round(time.Millisecond)) }()

	consoleDo(t, ctx, "open /console/", chromedp.Navigate(h.url+"/console/"),
		chromedp.WaitVisible(chromedp.CSS(`#dev-owners button[data-client="jiaxing-transport"]`)))
	consoleWait(t, ctx, "the page to start", `document.body.dataset.ready === 'true'`, 10*time.Second)
	if got := consoleText(t, ctx, "h1"); got != "免申即享规则控制台" {
		t.Errorf("the heading is %q, want Chinese first", got)
	}
	if consoleEval[bool](t, ctx, `!document.getElementById('workspace').hidden`) {
		t.Fatal("the workspace shows before anyone signed in")
	}
	if got := consoleEval[string](t, ctx, `document.querySelector('label[for=token]').innerText`); !strings.Contains(got, "scope rules") {
		t.Errorf("the token field is labelled %q", got)
	}
	testenv.Screenshot(t, ctx, "signin")

	// Sign in as the dev owner of 嘉兴市交通运输局.
	consoleDo(t, ctx, "sign in", chromedp.Click(chromedp.CSS(`#dev-owners button[data-client="jiaxing-transport"]`)),
		chromedp.WaitVisible(chromedp.CSS("#workspace")))
	if got := consoleText(t, ctx, "#who"); !strings.Contains(got, "jiaxing-transport") || !strings.Contains(got, "嘉兴市交通运输局") {
		t.Errorf("who: %q", got)
	}
	services := consoleEval[[]string](t, ctx, `[...document.querySelectorAll('#service option')].map(o => o.value)`)
	if len(services) == 0 || !slices.Contains(services, "jx-elderly-transit") || slices.Contains(services, "zj-newborn") {
		t.Errorf("services offered: %v; want the department's own (jx-elderly-transit), not another's", services)
	}
	facts := consoleText(t, ctx, "#facts tbody")
	if !strings.Contains(facts, "person.facts.disabilityLevel\tint") || strings.Contains(facts, "childName") || strings.Contains(facts, "monthlyIncome") {
		t.Errorf("facts listed:\n%s\nwant disabilityLevel (int), not facts of other departments", facts)
	}
	consoleWait(t, ctx, "the first check", `window.consoleTiming && window.consoleTiming.problems === 0`, 10*time.Second)
	consoleDo(t, ctx, "choose 老年人乘车优惠", chromedp.Evaluate[chromedp.Void](`(() => { const s = document.getElementById('service');
		s.value = 'jx-elderly-transit'; s.dispatchEvent(new Event('change')); })()`))

	// Type a condition with an error on its second line.
	const bad = "person.age >= 60 &&\n  person.hukou.city = \"嘉兴\""
	consoleDo(t, ctx, "type a bad condition",
		chromedp.Evaluate[chromedp.Void](`document.getElementById('editor').value = ''`),
		chromedp.SendKeys(chromedp.CSS("#editor"), bad))
	if got := consoleEval[string](t, ctx, `document.getElementById('editor').value`); got != bad {
		t.Fatalf("the editor holds %q after typing, want %q", got, bad)
	}
	consoleWait(t, ctx, "the error underlined",
		fmt.Sprintf(`window.consoleTiming && window.consoleTiming.condition === %q && document.querySelector('#overlay .squiggle')`, bad), 10*time.Second)
	first := consoleEval[consoleTiming](t, ctx, `window.consoleTiming`)
	sq := consoleEval[squiggle](t, ctx, consoleSquiggleJS)
	// "  person.hukou.city = ..." : the = is the 21st character of line 2.
	if sq.Line != 2 || sq.Column != 21 || sq.Text != "=" {
		t.Errorf("underline at %d:%d over %q, want 2:21 over \"=\"", sq.Line, sq.Column, sq.Text)
	}
	wantTop, wantLeft := sq.PadTop+float64(sq.Line-1)*sq.LineHeight, sq.PadLeft+float64(sq.Column-1)*sq.CharW
	if math.Abs(sq.Top-wantTop) > sq.LineHeight/2 || math.Abs(sq.Left-wantLeft) > sq.CharW/2 {
		t.Errorf("the underline is drawn at (%.1f, %.1f) in the editor, want (%.1f, %.1f): line %d, column %d", sq.Left, sq.Top, wantLeft, wantTop, sq.Line, sq.Column)
	}
	if sq.ListLine != "2:21" || !strings.Contains(sq.ListText, "第 2 行第 21 列") {
		t.Errorf("the problem list says %q (%s), want line 2, column 21 in words", sq.ListText, sq.ListLine)
	}
	testenv.Screenshot(t, ctx, "underlined")

	// Fix it from the keyboard: the problem's button puts the caret there; type the second =.
	consoleDo(t, ctx, "go to the problem and fix it",
		chromedp.Click(chromedp.CSS("#problems li[data-line] button")),
		chromedp.KeyEvent("="))
	consoleWait(t, ctx, "the fixed condition checked",
		`window.consoleTiming && window.consoleTiming.condition.includes('city == "嘉兴"') && window.consoleTiming.problems === 0`, 10*time.Second)
	second := consoleEval[consoleTiming](t, ctx, `window.consoleTiming`)
	fixed := consoleEval[string](t, ctx, `document.getElementById('editor').value`)
	trips := []consoleTiming{first, second}
	// Five more rounds of breaking the end of the condition and mending it (ten previews; the
	// story stays within rate_limits.preview's burst of 20).
	for i := range 5 {
		consoleDo(t, ctx, "break the end", chromedp.Evaluate[chromedp.Void](`(() => { const e = document.getElementById('editor');
			e.focus(); e.selectionStart = e.selectionEnd = e.value.length; })()`), chromedp.KeyEvent(" &&"))
		consoleWait(t, ctx, fmt.Sprintf("round %d underlined", i), fmt.Sprintf(`window.consoleTiming.condition === %q && document.querySelector('#overlay .squiggle')`, fixed+" &&"), 10*time.Second)
		trips = append(trips, consoleEval[consoleTiming](t, ctx, `window.consoleTiming`))
		consoleDo(t, ctx, "mend it", chromedp.KeyEvent("\b\b\b"))
		consoleWait(t, ctx, fmt.Sprintf("round %d mended", i), fmt.Sprintf(`window.consoleTiming.condition === %q && window.consoleTiming.problems === 0`, fixed), 10*time.Second)
		trips = append(trips, consoleEval[consoleTiming](t, ctx, `window.consoleTiming`))
	}
	var rt, ks []float64
	for _, tr := range trips {
		rt, ks = append(rt, tr.RoundTrip), append(ks, tr.KeystrokeToUnderline)
	}
	slices.Sort(rt)
	slices.Sort(ks)
	t.Logf("preview round trip, request sent to underline drawn, %d checks: median %.1f ms, min %.1f, max %.1f (target < 150 ms)", len(rt), rt[len(rt)/2], rt[0], rt[len(rt)-1])
	t.Logf("last keystroke to underline, with the 100 ms debounce: median %.1f ms, min %.1f, max %.1f (target < 150 ms)", ks[len(ks)/2], ks[0], ks[len(ks)-1])
	if got := consoleText(t, ctx, "#problems"); !strings.Contains(got, "没有问题") {
		t.Errorf("problems after the fix: %q", got)
	}
	if n := consoleEval[int](t, ctx, `document.querySelectorAll('#overlay .squiggle').length`); n != 0 {
		t.Errorf("%d underlines left after the fix", n)
	}
	matches := consoleEval[[]string](t, ctx, `[...document.querySelectorAll('#sample-results li')].map(li => li.dataset.match)`)
	if strings.Join(matches, ",") != "true,false,false" {
		t.Errorf("samples (67 in 嘉兴, 45 in 嘉兴, 70 in 上海) match %v, want true,false,false", matches)
	}
	if got := consoleText(t, ctx, "#sample-results"); !strings.Contains(got, "✓ 符合") || !strings.Contains(got, "✗ 不符合") {
		t.Errorf("sample results read %q", got)
	}
	if got := consoleText(t, ctx, "#rendered-title"); got != "陈建国，您可办理老年人乘车优惠" {
		t.Errorf("the title for the sample reads %q", got)
	}

	// The estimate, on request only.
	if got := consoleText(t, ctx, "#estimate"); got != "" {
		t.Errorf("an estimate shows before it was asked for: %q", got)
	}
	consoleDo(t, ctx, "estimate", chromedp.Click(chromedp.CSS("#estimate-btn")))
	consoleWait(t, ctx, "the estimate", `document.getElementById('estimate').dataset.status`, 10*time.Second)
	est := consoleText(t, ctx, "#estimate")
	if status := consoleEval[string](t, ctx, `document.getElementById('estimate').dataset.status`); status != "ESTIMATED" && status != "FEWER_THAN_THRESHOLD" ||
		!strings.Contains(est, "剩余隐私预算 0.9") {
		t.Errorf("estimate: %s %q, want a count (or fewer than k) and 0.9 of the budget left", status, est)
	}
	testenv.Screenshot(t, ctx, "checked")

	// Create and publish; the backfill runs over the stored profiles.
	consoleDo(t, ctx, "create", chromedp.Click(chromedp.CSS("#save")))
	consoleWait(t, ctx, "the draft", `document.getElementById('action-result').innerText.includes('已创建草稿')`, 10*time.Second)
	if got := consoleText(t, ctx, "#rules tbody"); !strings.Contains(got, "老年人乘车优惠提醒") || !strings.Contains(got, "草稿") {
		t.Errorf("the rules list after creating: %q", got)
	}
	consoleDo(t, ctx, "publish", chromedp.Click(chromedp.CSS("#publish")))
	consoleWait(t, ctx, "the backfill to finish", `document.getElementById('backfill-box').dataset.done === 'true'`, 60*time.Second)
	scanned := consoleEval[int](t, ctx, `+document.getElementById('backfill-box').dataset.scanned`)
	if scanned < people {
		t.Errorf("the backfill scanned %d profiles, want at least %d", scanned, people)
	}
	if got := consoleText(t, ctx, "#backfill-text"); !strings.Contains(got, "回溯完成") {
		t.Errorf("backfill: %q", got)
	}
	consoleWait(t, ctx, "the stats", fmt.Sprintf(`document.getElementById('rule-stats').innerText.includes('命中 %d')`, people), 10*time.Second)
	if got := consoleText(t, ctx, "#rule-stats"); !strings.Contains(got, "已送达 少于 20") {
		t.Errorf("stats: %q, want delivered as fewer than k (no phones registered)", got)
	}
	if got := consoleText(t, ctx, "#rules tbody"); !strings.Contains(got, "已发布") {
		t.Errorf("the rules list after publishing: %q", got)
	}
	testenv.Screenshot(t, ctx, "published")
	if *updateConsoleScreenshot {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("..", "docs", "img", "console.png")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
	}

	// Pause, then archive (which asks to be confirmed).
	consoleDo(t, ctx, "pause", chromedp.Click(chromedp.CSS("#pause")))
	consoleWait(t, ctx, "paused", `document.getElementById('rule-state').innerText.startsWith('已暂停')`, 10*time.Second)
	consoleDo(t, ctx, "archive", chromedp.Click(chromedp.CSS("#archive")))
	if got := consoleText(t, ctx, "#archive"); !strings.Contains(got, "确认归档") {
		t.Errorf("archive asks nothing first: %q", got)
	}
	consoleDo(t, ctx, "confirm archive", chromedp.Click(chromedp.CSS("#archive")))
	consoleWait(t, ctx, "archived", `document.getElementById('rule-state').innerText.startsWith('已归档')`, 10*time.Second)
	if consoleEval[bool](t, ctx, `!document.getElementById('publish').disabled || !document.getElementById('save').disabled`) {
		t.Error("an archived rule can still be published or saved")
	}

	// English on request; the document's language follows.
	consoleDo(t, ctx, "English", chromedp.Click(chromedp.CSS("#lang")))
	if got, lang := consoleText(t, ctx, "h1"), consoleEval[string](t, ctx, `document.documentElement.lang`); got != "Benefits-without-applying rule console" || lang != "en" {
		t.Errorf("in English the heading is %q (lang %s)", got, lang)
	}
	if got := consoleText(t, ctx, "#rule-state"); !strings.HasPrefix(got, "archived") {
		t.Errorf("in English the rule is %q", got)
	}
	consoleDo(t, ctx, "中文", chromedp.Click(chromedp.CSS("#lang")))

	// A phone's width: one column, nothing wider than the screen.
	consoleDo(t, ctx, "phone width", chromedp.EmulateViewport(390, 844))
	if w := consoleEval[int](t, ctx, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("at 390 px the page is %d px wide", w)
	}
	testenv.Screenshot(t, ctx, "phone")
}

// Outside dev mode the console offers no dev owners: the owner pastes a token, which goes to
// /graphql only. A bad token is refused in words; a good one shows that department's services
// and facts. The page answers with headers that keep the token to this origin.
func TestConsoleBrowserPastedToken(t *testing.T) {
	h := startIdentity(t, nil)
	target, _ := url.Parse(h.url)
	mux := http.NewServeMux()
	mux.Handle("GET /console/", console.Handler(false))
	mux.Handle("GET /ui/", webui.Shared("/ui/"))
	mux.Handle("/graphql", httputil.NewSingleHostReverseProxy(target))
	prod := httptest.NewServer(mux)
	defer prod.Close()

	resp, err := http.Get(prod.URL + "/console/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}

	ctx := testenv.Browser(t, 2*time.Minute)
	consoleDo(t, ctx, "open", chromedp.Navigate(prod.URL+"/console/"), chromedp.WaitVisible(chromedp.CSS("#token")))
	consoleWait(t, ctx, "the page to start", `document.body.dataset.ready === 'true'`, 10*time.Second)
	if consoleEval[bool](t, ctx, `!document.getElementById('dev-owners').hidden`) {
		t.Error("production offers the dev owners' secrets")
	}
	consoleDo(t, ctx, "a bad token", chromedp.SendKeys(chromedp.CSS("#token"), "tbo_not-a-token"), chromedp.Click(chromedp.CSS("#token-form button[type=submit]")))
	consoleWait(t, ctx, "the refusal", `document.getElementById('signin-error').innerText !== ''`, 10*time.Second)
	if got := consoleText(t, ctx, "#signin-error"); !strings.Contains(got, "令牌无效或已过期") {
		t.Errorf("a bad token says %q", got)
	}
	testenv.Screenshot(t, ctx, "bad-token")

	owner := url.Values{"client_id": {"zhejiang-health"}, "client_secret": {"dev-zhejiang-health-secret"}}
	newToken := func() string {
		form := url.Values{"grant_type": {"client_credentials"}}
		maps.Copy(form, owner)
		tok := oauthCall(t, h, "/oauth2/token", "", form).str("access_token")
		if tok == "" {
			t.Fatal("no token for zhejiang-health")
		}
		return tok
	}
	token := newToken()
	consoleDo(t, ctx, "a good token", chromedp.SetValue(chromedp.CSS("#token"), token), chromedp.Click(chromedp.CSS("#token-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#workspace")))
	if got := consoleText(t, ctx, "#who"); !strings.Contains(got, "浙江省卫生健康委员会") {
		t.Errorf("who: %q", got)
	}
	facts := consoleText(t, ctx, "#facts tbody")
	if !strings.Contains(facts, "person.facts.childName\tstring") || !strings.Contains(facts, "person.facts.diagnosis\tlist(string)") || strings.Contains(facts, "disabilityLevel") {
		t.Errorf("facts for 浙江省卫生健康委员会:\n%s", facts)
	}
	if got := consoleEval[string](t, ctx, `sessionStorage.getItem('tongban.console.token')`); got != token {
		t.Error("the pasted token is not kept for the tab")
	}
	if got := consoleEval[string](t, ctx, `localStorage.getItem('tongban.console.token') || ''`); got != "" {
		t.Error("the token is in localStorage")
	}
	testenv.Screenshot(t, ctx, "pasted-token")

	// The token ends (they live 15 minutes; here it is revoked): the next check asks for a new
	// one and keeps the work on the page.
	form := url.Values{"token": {token}}
	maps.Copy(form, owner)
	if r := oauthCall(t, h, "/oauth2/revoke", "", form); r.status != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.status, r.raw)
	}
	consoleDo(t, ctx, "type after the token ended", chromedp.Evaluate[chromedp.Void](`(() => { const e = document.getElementById('editor');
		e.focus(); e.selectionStart = e.selectionEnd = e.value.length; })()`), chromedp.KeyEvent(" && person.age > 18"))
	consoleWait(t, ctx, "the request for a new token", `!document.getElementById('signin').hidden`, 10*time.Second)
	if got := consoleText(t, ctx, "#signin-error"); !strings.Contains(got, "令牌无效或已过期") {
		t.Errorf("after the token ended the page says %q", got)
	}
	consoleDo(t, ctx, "paste a new token", chromedp.SetValue(chromedp.CSS("#token"), newToken()),
		chromedp.Click(chromedp.CSS("#token-form button[type=submit]")), chromedp.WaitNotVisible(chromedp.CSS("#signin")))
	consoleWait(t, ctx, "the check with the new token", `window.consoleTiming && window.consoleTiming.condition.endsWith('person.age > 18') && window.consoleTiming.problems === 0`, 10*time.Second)
}

// What the console asks first, without a browser: Query.ruleAuthoring gives an owner its own
// departments' services and the facts they may read, with types; others are refused.
func TestConsoleRuleAuthoring(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	const q = `{ ruleAuthoring { client departments services { id department } facts { name type sensitive readers } } }`
	r := h.gql(q, nil, machineToken(t, h, "jiaxing-hrss"))
	if len(r.Errors) > 0 {
		t.Fatalf("ruleAuthoring: %v", r.Errors)
	}
	a, _ := r.field("ruleAuthoring").(map[string]any)
	if a["client"] != "jiaxing-hrss" || fmt.Sprint(a["departments"]) != "[嘉兴市人力资源和社会保障局]" {
		t.Errorf("owner: %v %v", a["client"], a["departments"])
	}
	var services []string
	for _, s := range a["services"].([]any) {
		m := s.(map[string]any)
		if m["department"] != "嘉兴市人力资源和社会保障局" {
			t.Errorf("a service of another department: %v", m)
		}
		services = append(services, m["id"].(string))
	}
	if !slices.Contains(services, "jx-unemployment-benefit") {
		t.Errorf("services %v lack jx-unemployment-benefit", services)
	}
	facts := map[string]string{}
	for _, f := range a["facts"].([]any) {
		m := f.(map[string]any)
		facts[m["name"].(string)] = m["type"].(string)
		if fmt.Sprint(m["readers"]) != "[嘉兴市人力资源和社会保障局]" {
			t.Errorf("fact %v: readers beyond the caller's departments", m)
		}
	}
	// docs/service-owners.md's table: what 嘉兴市人力资源和社会保障局 reads.
	want := map[string]string{"children": "int", "monthlyIncome": "int", "employmentStatus": "string", "unemployedSince": "timestamp", "lowIncomeFamily": "bool"}
	if !maps.Equal(facts, want) {
		t.Errorf("facts %v, want %v", facts, want)
	}
	if code := h.gql(q, nil, "").code(); code != "UNAUTHENTICATED" {
		t.Errorf("anonymous: %s", code)
	}
	if code := h.gql(q, nil, machineToken(t, h, "jiaxing-data")).code(); code != "FORBIDDEN" {
		t.Errorf("a data platform: %s", code)
	}
}
