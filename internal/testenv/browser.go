package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// RequireBrowserEnv names the variable that turns a missing browser from a skip into a failure:
// CI sets it, since it installs Chromium, so a browser test can never pass there by not running.
const RequireBrowserEnv = "TONGBAN_REQUIRE_BROWSER"

// ScreenshotsEnv names the folder browser tests save their screenshots in (default: a folder
// under the system's temporary directory, which the test logs).
const ScreenshotsEnv = "TONGBAN_SCREENSHOTS"

// browserPaths are where Debian's chromium package and others put the browser; TONGBAN_CHROMIUM
// names another.
var browserPaths = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"}

// findBrowser returns the path of a Chromium the tests can drive, or "".
func findBrowser() string {
	if p := os.Getenv("TONGBAN_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range browserPaths {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Browser starts a headless Chromium for t and returns a context to drive it with chromedp,
// bounded by timeout. Without a browser the test is skipped, saying how to get one, unless
// TONGBAN_REQUIRE_BROWSER is set, which fails it. The flags are those this machine kind needs:
// no sandbox (root), no GPU, and no background networking (a closed network refuses it).
func Browser(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	path := findBrowser()
	if path == "" {
		msg := "no Chromium found (looked for " + fmt.Sprint(browserPaths) + " on PATH and TONGBAN_CHROMIUM): " +
			"install Debian's chromium package (apt-get install chromium) to run the browser tests"
		if os.Getenv(RequireBrowserEnv) != "" {
			t.Fatal(msg + "; " + RequireBrowserEnv + " is set, so a missing browser is a failure")
		}
		t.Skip(msg)
	}
	opts := append([]chromedp.ExecAllocatorOption{},
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1400, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	// Start the browser now, so that a browser that cannot start fails here, with its reason.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium %s: %v", path, err)
	}
	return ctx
}

var shotSeq atomic.Int64

// ScreenshotDir is the folder browser tests save screenshots in, created on first use.
func ScreenshotDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(ScreenshotsEnv)
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "tongban-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

// Screenshot saves the page as PNG under ScreenshotDir, named by the test, a sequence and
// name, and logs the path; it returns the path.
func Screenshot(t testing.TB, ctx context.Context, name string) string {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG (below it, JPEG)
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	file := fmt.Sprintf("%s-%02d-%s.png", unsafeName.ReplaceAllString(t.Name(), "_"), shotSeq.Add(1), unsafeName.ReplaceAllString(name, "_"))
	path := filepath.Join(ScreenshotDir(t), file)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
	return path
}
