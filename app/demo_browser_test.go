package app

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/testenv"
)

var demoUpdateScreenshot = flag.Bool("update-demo-screenshot", false, "write the demo's final screenshot to docs/img/demo.png")

// The whole story of /demo in a real browser: the page loads small; 王芳 signs in on 浙里办's
// phone through its provider (code flow with PKCE); she opens a 随申办 service, consents, and
// 随申办's phone shows her arriving (pairwise sub, the 浙里办 login's acr, the consented name);
// the data platform reports a birth and 浙里办's phone shows the banner and the badge; she
// signs out everywhere and each phone reacts. Screenshots of each step go to the test's folder.
func TestDemoBrowserStory(t *testing.T) {
	// 随申办 may also ask to stay connected (offline_access): the consent sheet offers it as a
	// choice, unticked. (Dev mode's clients do not ask for it.)
	h := startIdentity(t, func(c *config.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == "suishenban" {
				c.Clients[i].Scopes = append(c.Clients[i].Scopes, "offline_access")
			}
		}
	})
	ctx := testenv.Browser(t, 3*time.Minute)
	began := time.Now()

	// --- first load: what it transferred, compressed ---------------------------------------
	load := demoWatchTransfers(t, ctx)
	demoDo(t, ctx, chromedp.Navigate(h.url+"/demo")) // the redirect to /demo/ included
	for _, app := range []string{"zheliban", "suishenban", "sufuban"} {
		demoWait(t, ctx, demoInFrame(app, `d.body.dataset.state === 'signed-in-needed' && d.querySelector('#citizen')`))
	}
	demoWait(t, ctx, `document.querySelectorAll('#pf-citizen option').length === 7`)
	time.Sleep(300 * time.Millisecond) // the last responses' loadingFinished
	assets, all, files := load.total(h.url)
	t.Logf("first load of /demo: %d bytes of assets (%d files) transferred, %d bytes with the API calls; %.1f KB of 300 KB",
		assets, files, all, float64(assets)/1024)
	if assets >= 300*1024 {
		t.Errorf("first load transferred %d bytes of assets, want under 300 KB", assets)
	}
	if files == 0 {
		t.Fatal("no asset transfer was seen: the measurement is broken")
	}

	// What is on the page: Chinese first, three phones a screen reader can name.
	demoExpect(t, ctx, `document.documentElement.lang`, "zh-CN")
	demoExpect(t, ctx, `document.querySelector('h1').textContent`, "通办演示：三部手机，一个人")
	demoExpect(t, ctx, `[...document.querySelectorAll('.phones iframe')].map(f => f.title).join(',')`, "浙里办手机,随申办手机,苏服办手机")
	// Only citizens with an account at the app: 王芳 is at 浙里办, 刘洋 is not.
	demoExpect(t, ctx, demoInFrame("zheliban", `[...d.querySelectorAll('#citizen option')].map(o => o.value).join(',')`),
		"wang-fang,chen-jianguo,zhang-wei,li-na,zhou-ting")
	testenv.Screenshot(t, ctx, "first-load")

	// The English toggle reaches the phones too, and back.
	demoDo(t, ctx, chromedp.Click(chromedp.CSS("#lang")))
	demoWait(t, ctx, `document.querySelector('h1').textContent.startsWith('Tongban demo')`)
	demoWait(t, ctx, demoInFrame("zheliban", `d.querySelector('h2') && d.querySelector('h2').textContent === 'Sign in to Zheliban'`))
	demoDo(t, ctx, chromedp.Click(chromedp.CSS("#lang")))
	demoWait(t, ctx, demoInFrame("zheliban", `d.querySelector('h2') && d.querySelector('h2').textContent === '登录浙里办'`))

	// --- sign in on 浙里办 as 王芳 ------------------------------------------------------------
	demoEval(t, ctx, demoInFrame("zheliban", `(d.querySelector('#citizen').value = 'wang-fang', true)`))
	demoClick(t, ctx, "zheliban", "#signin")
	demoWait(t, ctx, demoInFrame("zheliban", `d.body.dataset.state === 'signed-in' && d.querySelector('#person-name')`))
	demoExpect(t, ctx, demoInFrame("zheliban", `d.querySelector('#person-name').textContent`), "王芳")
	demoExpect(t, ctx, demoInFrame("zheliban", `d.querySelector('#masked-id').textContent`), "330***********108X")
	demoExpect(t, ctx, demoInFrame("zheliban", `d.querySelector('#accounts li[data-app=zheliban]').textContent`), "浙里办 zlb-0001 · L4")
	demoExpect(t, ctx, demoInFrame("zheliban", `location.search`), "") // the code is out of the address
	demoWait(t, ctx, demoInFrame("zheliban", `d.querySelector('button[data-service=sh-medical-filing]')`))
	demoWait(t, ctx, `document.querySelector('#phone-zheliban').classList.contains('selected')`)
	testenv.Screenshot(t, ctx, "signed-in")

	// --- switch into 随申办 with consent --------------------------------------------------------
	demoClick(t, ctx, "zheliban", "button[data-service=sh-medical-filing]")
	demoWait(t, ctx, demoInFrame("zheliban", `!d.querySelector('#sheet').hidden && d.querySelector('#consent-allow')`))
	demoExpect(t, ctx, demoInFrame("zheliban", `d.querySelector('#sheet').getAttribute('role') + ' ' + d.querySelector('#sheet').getAttribute('aria-modal')`), "dialog true")
	demoExpect(t, ctx, demoInFrame("zheliban", `[...d.querySelectorAll('#consent-required li')].map(l => l.dataset.scope).sort().join(',')`), "id_number,phone,profile")
	demoExpect(t, ctx, demoInFrame("zheliban", `[...d.querySelectorAll('#consent-optional input')].map(i => i.value + ':' + i.checked).join(',')`), "offline_access:false")
	demoExpect(t, ctx, demoInFrame("zheliban", `d.querySelector('label[for=opt-offline_access] b').textContent`), "退出通办后仍与随申办保持连接，直到您断开连接")
	testenv.Screenshot(t, ctx, "consent")
	demoClick(t, ctx, "zheliban", "#consent-allow")
	demoWait(t, ctx, demoInFrame("suishenban", `d.body && d.body.textContent.includes('signed in by a switch')`))
	claims := map[string]string{}
	for _, k := range []string{"sub", "sid", "name", "acr", "id_number"} {
		claims[k] = demoEval(t, ctx, demoInFrame("suishenban",
			fmt.Sprintf(`([...d.querySelectorAll('tr')].find(r => r.cells[0].textContent === %q) || {cells: [0, {textContent: ''}]}).cells[1].textContent`, k)))
	}
	t.Logf("arrived at 随申办: %v", claims)
	if claims["name"] != "王芳" || claims["acr"] != "urn:tongban:loa:4" || claims["sid"] == "" {
		t.Errorf("arrival page claims %v: want 王芳, the 浙里办 login's acr (level 4: face) and a sid", claims)
	}
	if claims["sub"] == "" || claims["sub"] == "zlb-0001" || claims["sub"] == "ssb-0001" {
		t.Errorf("arrival page sub %q: want 随申办's own pairwise subject", claims["sub"])
	}
	demoExpect(t, ctx, demoInFrame("zheliban", `d.querySelector('#switch-status').textContent`), "已在随申办手机中打开")
	demoWait(t, ctx, `document.querySelector('#audit-list li[data-kind=SWITCH_REDEEMED]')`)
	demoExpect(t, ctx, `document.querySelector('#audit-list li[data-kind=SWITCH_REDEEMED] span').textContent`, "随申办兑换票据，已登录（无需再次登录）")
	demoExpect(t, ctx, `document.querySelector('#audit-list li[data-kind=CONSENT_GRANTED] span').textContent`, "同意随申办获取信息")
	testenv.Screenshot(t, ctx, "arrived")

	// --- the data platform reports a birth -------------------------------------------------------
	demoExpect(t, ctx, `document.querySelector('#pf-citizen').value + ' ' + document.querySelector('#pf-who').value`, "wang-fang account:zheliban")
	demoDo(t, ctx, chromedp.Click(chromedp.CSS(`input[name=event][value=birth]`)), chromedp.Click(chromedp.CSS("#pf-send")))
	demoWait(t, ctx, `document.querySelector('#pf-result').dataset.result`)
	demoExpect(t, ctx, `document.querySelector('#pf-result').textContent`, "已接受 1 个事件")
	demoWait(t, ctx, demoInFrame("zheliban", `d.querySelector('#banner').classList.contains('in')`))
	demoExpect(t, ctx, demoInFrame("zheliban", `d.querySelector('#banner strong').textContent`), "恭喜王芳喜添宝宝")
	demoWait(t, ctx, demoInFrame("zheliban", `!d.querySelector('#badge').hidden && d.querySelector('#badge').textContent === '1'`))
	demoExpect(t, ctx, demoInFrame("zheliban", `d.querySelector('#badge').getAttribute('aria-label')`), "1 条未读")
	time.Sleep(400 * time.Millisecond) // the banner's slide
	testenv.Screenshot(t, ctx, "banner")

	// Opening it in the inbox marks it read: the badge goes.
	demoClick(t, ctx, "zheliban", "#tab-inbox")
	demoWait(t, ctx, demoInFrame("zheliban", `d.querySelector('#inbox details.unread summary')`))
	demoClick(t, ctx, "zheliban", "#inbox details.unread summary")
	demoWait(t, ctx, demoInFrame("zheliban", `d.querySelector('#badge').hidden`))
	testenv.Screenshot(t, ctx, "inbox")

	// --- sign out everywhere ------------------------------------------------------------------------
	demoClick(t, ctx, "zheliban", "#tab-me")
	demoWait(t, ctx, demoInFrame("zheliban", `d.querySelector('#sessions li[data-current=true]')`))
	demoExpect(t, ctx, demoInFrame("zheliban", `d.querySelector('#sessions li[data-current=true]').dataset.app`), "zheliban")
	demoClick(t, ctx, "zheliban", "#sign-out-everywhere")
	demoWait(t, ctx, demoInFrame("zheliban", `d.querySelector('#signed-out')`))
	demoExpect(t, ctx, demoInFrame("zheliban", `d.querySelector('#signed-out h2').textContent`), "已退出")
	demoWait(t, ctx, demoInFrame("suishenban", `d.querySelector('#logout-state') && d.querySelector('#logout-state').textContent.includes('Signed out by Tongban')`))
	demoWait(t, ctx, `document.querySelector('#audit-note').dataset.state !== 'live'`)
	final := testenv.Screenshot(t, ctx, "signed-out-everywhere")
	if *demoUpdateScreenshot {
		png, err := os.ReadFile(final)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("..", "docs", "img", "demo.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("wrote docs/img/demo.png")
	}

	// The platform can also name a person by ID number: 陈建国, who never signed in, turns 60.
	demoEval(t, ctx, `(() => { const c = document.querySelector('#pf-citizen'); c.value = 'chen-jianguo'; c.dispatchEvent(new Event('change')); return true; })()`)
	demoDo(t, ctx, chromedp.SetValue(chromedp.CSS("#pf-who"), "id"), chromedp.Click(chromedp.CSS(`input[name=event][value=birthday]`)))
	demoEval(t, ctx, `(document.querySelector('#pf-result').dataset.result = '', true)`)
	demoDo(t, ctx, chromedp.Click(chromedp.CSS("#pf-send")))
	demoWait(t, ctx, `document.querySelector('#pf-result').dataset.result`)
	demoExpect(t, ctx, `document.querySelector('#pf-result').textContent`, "已接受 1 个事件")

	// --- at a phone's width the phones stack, nothing scrolls sideways --------------------------------
	demoDo(t, ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	demoWait(t, ctx, `document.documentElement.scrollWidth <= 390 && document.querySelector('#phone-suishenban').getBoundingClientRect().top > document.querySelector('#phone-zheliban').getBoundingClientRect().bottom`)
	testenv.Screenshot(t, ctx, "phone-width")
	t.Logf("the story took %s in the browser", time.Since(began).Round(time.Millisecond))
}

// demoTransfers adds up what the page and its frames received over the network.
type demoTransfers struct {
	mu   sync.Mutex
	urls map[network.RequestID]string
	size map[network.RequestID]float64
}

func demoWatchTransfers(t *testing.T, ctx context.Context) *demoTransfers {
	t.Helper()
	w := &demoTransfers{urls: map[network.RequestID]string{}, size: map[network.RequestID]float64{}}
	err := chromedp.Listen(ctx, func(ev any) {
		w.mu.Lock()
		defer w.mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			w.urls[ev.RequestID] = ev.Request.URL
		case *network.EventLoadingFinished:
			w.size[ev.RequestID] += ev.EncodedDataLength
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// total is the bytes of the page's own files (documents, scripts, styles: all but /graphql and
// citizens.json), their count, and the bytes of everything.
func (w *demoTransfers) total(base string) (assets, all int64, files int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, n := range w.size {
		all += int64(n)
		u := strings.TrimPrefix(w.urls[id], base)
		if strings.HasPrefix(u, "/graphql") || strings.HasPrefix(u, "/oauth2/") || strings.HasPrefix(u, "/demo/citizens.json") {
			continue
		}
		assets += int64(n)
		files++
	}
	return assets, all, files
}

// demoInFrame is a JavaScript expression evaluated against the document of an app's phone
// frame (same origin), as d; null while the frame has no document.
func demoInFrame(app, expr string) string {
	return fmt.Sprintf(`(() => { const f = document.getElementById('frame-%s'); const d = f && f.contentDocument; if (!d || !d.body) return null; const location = f.contentWindow.location; return (%s); })()`, app, expr)
}

func demoDo(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatal(err)
	}
}

// demoWait waits up to 15 s for expr to be truthy, and fails with a screenshot when it is not.
func demoWait(t *testing.T, ctx context.Context, expr string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		testenv.Screenshot(t, ctx, "timeout")
		t.Fatalf("waiting for %s: %v", expr, err)
	}
}

// demoEval evaluates expr and returns it as text.
func demoEval(t *testing.T, ctx context.Context, expr string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[any](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func demoExpect(t *testing.T, ctx context.Context, expr, want string) {
	t.Helper()
	if got := demoEval(t, ctx, expr); got != want {
		testenv.Screenshot(t, ctx, "unexpected")
		t.Fatalf("%s = %q, want %q", expr, got, want)
	}
}

// demoClick clicks an element of an app's phone with the mouse, as a person would: the query
// runs in the frame's document (same origin, so the same process and the same DOM tree).
func demoClick(t *testing.T, ctx context.Context, app, css string) {
	t.Helper()
	demoWait(t, ctx, demoInFrame(app, fmt.Sprintf(`d.querySelector(%q)`, css)))
	frames, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSS("#frame-"+app)))
	if err != nil || len(frames) == 0 {
		t.Fatalf("the %s frame: %v", app, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(cctx, chromedp.Click(chromedp.CSS(css), chromedp.FromNode(frames[0]), chromedp.NodeVisible)); err != nil {
		testenv.Screenshot(t, ctx, "click")
		t.Fatalf("click %s in %s: %v", css, app, err)
	}
}
