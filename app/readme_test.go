package app

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/devidp"
	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
)

// readmeBlock is a shell block of the README that talks to the dev server.
type readmeBlock struct {
	line int // where it starts in README.md
	text string
}

// readmeBlocks returns the README's ```sh blocks that talk to a dev server on localhost:8080,
// in order. Blocks that run go (the two commands, benchmarks, code generation) are not part of
// the walk-through against a server.
func readmeBlocks(t *testing.T) []readmeBlock {
	t.Helper()
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []readmeBlock
	lines := strings.Split(string(raw), "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "```sh" {
			continue
		}
		start := i + 1
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
		}
		text := strings.Join(lines[start:i], "\n")
		if strings.Contains(text, "localhost:8080") {
			out = append(out, readmeBlock{line: start, text: text})
		}
	}
	return out
}

// What each of the README's runnable blocks must show, by a piece of the block that names it.
// A runnable block without an entry here fails the test: whoever adds one says what it shows.
var readmeShows = []struct {
	block string
	shows []string
}{
	{"apps { id name region", []string{`"id":"zheliban"`, `"me":null`}},
	{`nonce: \"n1\") { accessToken refreshToken`, []string{`"accessToken":"tba_`, `"displayName":"王芳"`}},
	{`switchApp(target: \"suishenban\") { consentRequired launchUrl } }`, []string{`"consentRequired":["profile","phone","id_number"],"launchUrl":null`, `"scopes":["id_number","phone","profile"]`, `"consentRequired":[],"launchUrl":"http`}},
	{"refreshSession", []string{`"accessToken":"tba_`, `"refreshToken":"`}},
	{"federation add-subordinate", []string{`["http://127.0.0.1`, `/dev/apps/sufuban","http://`, "pinned kid fed-", `added http://`,
		`/dev/apps/haining","http://`}},
	{"dev/apps/haining\\\", scopes", []string{`"grantConsent":{"scopes":["phone","profile"]}`, `<h1>海宁市民之家: signed in by a switch`, `<td>name</td><td>王芳`}},
	{"ingestEvents(events", []string{`"accepted":1`}},
	{"previewPushRule", []string{`"valid":true`, `"matches":[true,false]`, `"status":"DRAFT","version":1`}},
	{"platform: ANDROID, token:", []string{`"quietStart":null`, `"platform":"ANDROID"`}},
	{"registerMiniProgram", []string{`"platform":"WECHAT"`, `"category":"婚育","kind":"ONE_TIME","remaining":1`, `"platform":"HARMONY","vendor":"HMS"`}},
	{"新生儿医保参保提醒", []string{`"status":"PUBLISHED"`, `"accepted":1`, `"thing1":`, `新生儿医保参保提醒`, `"category": "ACCOUNT"`,
		`"subscriptions":[]`, `{"platform":"ANDROID","vendor":"FCM"}`, `{"platform":"HARMONY","vendor":"HMS"}`}},
	{"signOutEverywhere", []string{`<td>sid</td><td>`, `"sessions":[{"app":{"id":"zheliban"}`, `"current":true`,
		`"connectedApps":[{"app":{"id":"suishenban"},"grants":`, `"signOutEverywhere":`, `"App":"suishenban","Subject":"`}},
	{"/dev/idp/zheliban/logout", []string{`"sent":`, `"status":200`, `{"data":{"me":null}}`}},
}

// The README's walk-through, run as a newcomer would: every shell block that talks to the dev
// server, in order, in one bash session (variables carry from block to block, as in one
// terminal), against a dev server of this test's own. A block that fails or does not show what
// the README says it shows fails the test, naming the block's line.
func TestReadmeWalkthroughRuns(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"bash", "curl", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the README's shell blocks need %s: %v", tool, err)
		}
	}
	// The walk-through runs `tongban federation add-subordinate` beside the server, as a reader
	// does beside `go run ./cmd/tongban`: the command finds the server's embedded store at
	// redis.embedded_addr, so the server gets an embedded store of its own, under the prefix a
	// command uses.
	store, err := redisx.Open(redisx.Options{EmbeddedAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	cli := buildCommand(t)
	h := startIdentity(t, nil, WithStore(store))
	host := strings.TrimPrefix(h.url, "http://")
	blocks := readmeBlocks(t)
	if len(blocks) < len(readmeShows) {
		t.Fatalf("found %d runnable blocks in README.md, want at least %d", len(blocks), len(readmeShows))
	}

	var script strings.Builder
	script.WriteString("set -u\n")
	fmt.Fprintf(&script, "export TONGBAN_REDIS_EMBEDDED_ADDR=%s TONGBAN_PUBLIC_URL=http://%s\n", store.Embedded.Addr(), host)
	for i, b := range blocks {
		text := strings.ReplaceAll(b.text, "localhost:8080", host)
		text = strings.ReplaceAll(text, "go run ./cmd/tongban", cli)
		fmt.Fprintf(&script, "printf '\\n@@block %d@@\\n'\n%s\n", i, text)
	}
	// The tokens the walk-through handled, for the log check below.
	script.WriteString(`printf '\n@@tokens@@\n%s\n%s\n%s\n%s\n' "${TOKEN:-}" "${ACCESS:-}" "${REFRESH:-}" "${DATA:-}"` + "\n")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	// A reader's terminal has no TONGBAN_* of the test runner's (CI sets some for the tests
	// themselves); the command line would take them for configuration keys.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TONGBAN_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("the walk-through stopped: %v\nstderr:\n%s\nstdout:\n%s", err, stderr.String(), stdout.String())
	}
	out, tokens, _ := strings.Cut(stdout.String(), "\n@@tokens@@\n")
	outputs := regexp.MustCompile(`\n@@block (\d+)@@\n`).Split(out, -1)[1:]
	if len(outputs) != len(blocks) {
		t.Fatalf("%d outputs for %d blocks:\n%s", len(outputs), len(blocks), stdout.String())
	}
	for i, b := range blocks {
		var shows []string
		found := false
		for _, s := range readmeShows {
			if strings.Contains(b.text, s.block) {
				if found {
					t.Fatalf("README.md line %d: two entries of readmeShows name the block", b.line)
				}
				shows, found = s.shows, true
			}
		}
		if !found {
			t.Errorf("README.md line %d: a runnable block with no expectation in readmeShows:\n%s", b.line, b.text)
			continue
		}
		for _, want := range shows {
			if !strings.Contains(outputs[i], want) {
				t.Errorf("README.md line %d: the block's output lacks %s:\n%s", b.line, want, outputs[i])
			}
		}
		if strings.Contains(outputs[i], `"errors":`) {
			t.Errorf("README.md line %d: the block answered an error:\n%s", b.line, outputs[i])
		}
	}
	if t.Failed() {
		t.Logf("the walk-through's stderr:\n%s", stderr.String())
		t.Logf("server log:\n%s", h.logs.String())
	}
	// The push section's FCM call is asynchronous: the README waits a second, the test as
	// long as a loaded machine needs, for the one birth notice its device registration released.
	testenv.Eventually(t, 20*time.Second, func() bool {
		_, body := h.get("/dev/fcm/messages")
		return strings.Count(body, "恭喜王芳喜添宝宝") == 1 && strings.Contains(h.logs.String(), `"msg":"delivery: batch"`)
	}, "FCM to accept the birth notice once, and its batch settled")
	logHoldsNothingPersonal(t, h.logs.String(), strings.Fields(tokens))
	logTellsTheStory(t, h.logs.String())
}

// buildCommand builds cmd/tongban for the walk-through's command lines.
func buildCommand(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tongban")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/tongban")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/tongban: %v\n%s", err, out)
	}
	return bin
}

// logTellsTheStory fails the test when the walk-through's server log misses one of the lines
// an operator follows it by: the start-up summary and the ready line, the request lines with
// the client's address, and one line per sign-in, switch, ingest call, rule change and
// delivery batch.
func logTellsTheStory(t *testing.T, log string) {
	t.Helper()
	for _, want := range []string{
		`"msg":"tongban","mode":"dev"`, `"msg":"ready"`,
		`"msg":"http request"`, `"client":"127.0.0.1"`,
		`"msg":"audit: signed in"`, `"msg":"audit: switch issued"`, `"msg":"audit: consent granted"`,
		`"msg":"push: events ingested"`, `"msg":"push: rule created"`, `"msg":"delivery: batch"`,
		// The sample rules published at start, and 浙江省卫生健康委员会's published by a
		// request of the walk-through (push/rules.go logChange).
		`"msg":"push: rule published"`,
		// The backfill the sample rule jiaxing-transport asks for at publication, done at its
		// first step: dev mode stores no profile before the walk-through (push/backfill.go).
		`"msg":"push: backfill step"`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the server log has no %s", want)
		}
	}
	for what, line := range map[string]*regexp.Regexp{
		"a rule published by a request": regexp.MustCompile(`"msg":"push: rule published",[^\n]*"status":"PUBLISHED"[^\n]*"request_id":"`),
		"a backfill's last step":        regexp.MustCompile(`"msg":"push: backfill step",[^\n]*"scanned":\d+,"matched":\d+,"done":true`),
	} {
		if !line.MatchString(log) {
			t.Errorf("the server log has no line of %s", what)
		}
	}
}

// logHoldsNothingPersonal fails the test when a server's log holds a sample citizen's ID
// number, name or phone number, a token the walk-through handled, or a dev secret: the log is
// read by operators, shipped to log stores and kept, and none of that may be in it.
func logHoldsNothingPersonal(t *testing.T, log string, tokens []string) {
	t.Helper()
	if log == "" || len(tokens) < 4 {
		t.Fatalf("the server logged nothing, or the walk-through handled %d tokens, not 4: the check would pass for nothing", len(tokens))
	}
	forbidden := map[string]string{}
	for _, c := range devidp.Fixtures(time.Now()) {
		forbidden[c.IDNumber] = c.Key + "'s ID number"
		forbidden[c.Name] = c.Key + "'s name"
		if c.Phone != "" {
			forbidden[c.Phone] = c.Key + "'s phone number"
		}
	}
	cfg := config.Dev()
	forbidden[cfg.Secrets.Pepper] = "the pepper"
	for _, c := range cfg.Clients {
		forbidden[c.Secret] = "client " + c.ID + "'s secret"
	}
	for _, m := range cfg.MachineClients {
		forbidden[m.Secret] = "machine client " + m.ID + "'s secret"
	}
	for i, tok := range tokens {
		if len(tok) >= 16 {
			forbidden[tok] = fmt.Sprintf("token %d of the walk-through", i)
		}
	}
	for value, what := range forbidden {
		if value != "" && strings.Contains(log, value) {
			t.Errorf("the server log holds %s", what)
		}
	}
}

// The README's table of sample citizens gives their ID numbers; they are the dev provider's,
// except 陈建国's, which follows the month.
func TestReadmeSampleIDNumbersAreTheDevProviders(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range devidp.Fixtures(time.Now()) {
		if c.Key == "chen-jianguo" {
			continue
		}
		row := regexp.MustCompile("(?m)^\\| `" + regexp.QuoteMeta(c.Key) + "` \\|.*$").FindString(string(raw))
		if !strings.Contains(row, "`"+c.IDNumber+"`") {
			t.Errorf("README's row for %s does not give %s: %q", c.Key, c.IDNumber, row)
		}
	}
}
