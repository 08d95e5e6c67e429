package graph

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/metrics"
	"github.com/tongban/tongban/internal/testenv"
)

// scalarRow puts a value of one input type where the schema takes it. The fields are all ones
// a caller must authenticate for: a value that parses reaches the resolver and gets
// UNAUTHENTICATED, so any other answer is about the value.
type scalarRow struct {
	typ     string // the scalar or enum
	varType string // the variable's declared type
	query   string // %s is where the value goes
	inline  string // a malformed literal
	value   any    // a malformed variable value
	field   string // the argument path the error must name
	// anyValue: the type takes every JSON value, so nothing is malformed; the row checks that
	// odd values are not INTERNAL.
	anyValue bool
}

const scalarRuleInput = `name: "x", serviceId: "s", condition: "true", triggers: [], title: "t", body: "b", category: "教育"`

var scalarRows = []scalarRow{
	{typ: "Time", varType: "Time", query: `mutation($v: Time) { previewPushRule(input: {` + scalarRuleInput + `, validFrom: %s}) { valid } }`,
		inline: `"yesterday"`, value: "yesterday", field: "input.validFrom"},
	{typ: "Time", varType: "Time!", query: `mutation($v: Time!) { ingestEvents(events: [{id: "1", type: "a.b", occurredAt: %s}]) { accepted } }`,
		inline: `"2026-13-45T99:00:00Z"`, value: 1700000000, field: "events[0].occurredAt"},
	{typ: "ID", varType: "ID!", query: `query($v: ID!) { pushRule(id: %s) { id } }`,
		inline: `true`, value: map[string]any{"a": 1}, field: "id"},
	{typ: "Int", varType: "Int", query: `query($v: Int) { pushRules(first: %s) { edges { cursor } } }`,
		inline: `"ten"`, value: "ten", field: "first"},
	{typ: "Int", varType: "Int", query: `query($v: Int) { pushRules(first: %s) { edges { cursor } } }`,
		inline: `1.5`, value: 1e40, field: "first"},
	{typ: "String", varType: "String", query: `query($v: String) { pushRules(after: %s) { edges { cursor } } }`,
		inline: `5`, value: []any{"a"}, field: "after"},
	{typ: "Boolean", varType: "Boolean", query: `mutation($v: Boolean) { previewPushRule(input: {` + scalarRuleInput + `, backfill: %s}) { valid } }`,
		inline: `"yes"`, value: "yes", field: "input.backfill"},
	{typ: "JSON", varType: "[JSON!]", query: `mutation($v: [JSON!]) { previewPushRule(input: {` + scalarRuleInput + `}, samples: %s) { valid } }`,
		inline: `[{a: [1, "x", null]}]`, value: []any{1e300, "", []any{}}, anyValue: true},
	{typ: "Platform", varType: "Platform!", query: `mutation($v: Platform!) { registerDevice(input: {app: "zheliban", platform: %s, token: "t"}) { id } }`,
		inline: `"ANDROID"`, value: "BLACKBERRY", field: "input.platform"},
	{typ: "PushVendor", varType: "PushVendor", query: `mutation($v: PushVendor) { registerDevice(input: {app: "zheliban", platform: IOS, token: "t", vendor: %s}) { id } }`,
		inline: `"APNS"`, value: "APNS2", field: "input.vendor"},
	{typ: "MiniProgramPlatform", varType: "MiniProgramPlatform!", query: `mutation($v: MiniProgramPlatform!) { registerMiniProgram(app: "zheliban", platform: %s, loginCode: "c") { boundAt } }`,
		inline: `QQ`, value: "QQ", field: "platform"},
	{typ: "SubscriptionKind", varType: "SubscriptionKind!", query: `mutation($v: SubscriptionKind!) { recordSubscriptions(app: "zheliban", platform: WECHAT, templateIds: ["t"], kind: %s) { templateId } }`,
		inline: `FOREVER`, value: "FOREVER", field: "kind"},
	{typ: "RuleStatus", varType: "RuleStatus", query: `query($v: RuleStatus) { pushRules(status: %s) { edges { cursor } } }`,
		inline: `NOPE`, value: "NOPE", field: "status"},
	{typ: "Channel", varType: "Channel!", query: `mutation($v: Channel!) { previewPushRule(input: {` + scalarRuleInput + `, channels: [%s]}) { valid } }`,
		inline: `SMS`, value: "SMS", field: "input.channels[0]"},
}

func scalarHandler(t testing.TB) *Handler {
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	return NewHandler(&Resolver{Directory: cfg}, Options{
		ComplexityLimit: 1000, DepthLimit: 10, AliasLimit: 5, TokenLimit: 2000, SelectionLimit: 100,
		PublicURL: "http://localhost:8080", Store: testenv.Redis(t), Metrics: metrics.New(prometheus.NewRegistry()),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
}

type scalarError struct {
	Message    string         `json:"message"`
	Extensions map[string]any `json:"extensions"`
}

func postScalar(t testing.TB, h *Handler, body map[string]any) []scalarError {
	b, _ := json.Marshal(body)
	req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var resp struct {
		Errors []scalarError `json:"errors"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatalf("status %d: not JSON: %q", w.Code, w.Body.String())
	}
	return resp.Errors
}

// inlineQuery is the row's query with the literal in place and no variable declared (an
// unused variable is itself a validation error).
func (r scalarRow) inlineQuery(literal string) string {
	q := fmt.Sprintf(r.query, literal)
	return strings.Replace(q, "($v: "+r.varType+")", "", 1)
}

// Every scalar and enum the schema takes as input, inline and as a variable: malformed, it is
// BAD_USER_INPUT naming the argument (extensions.field) or the variable (extensions.variable),
// never INTERNAL.
func TestMalformedScalarsAreBadUserInput(t *testing.T) {
	h := scalarHandler(t)
	for _, r := range scalarRows {
		t.Run(r.typ+" "+r.field+" inline", func(t *testing.T) {
			errs := postScalar(t, h, map[string]any{"query": r.inlineQuery(r.inline)})
			r.check(t, errs, false)
		})
		t.Run(r.typ+" "+r.field+" variable", func(t *testing.T) {
			errs := postScalar(t, h, map[string]any{"query": fmt.Sprintf(r.query, "$v"), "variables": map[string]any{"v": r.value}})
			r.check(t, errs, true)
		})
	}
}

func (r scalarRow) check(t *testing.T, errs []scalarError, variable bool) {
	t.Helper()
	if len(errs) != 1 {
		t.Fatalf("want one error, got %+v", errs)
	}
	e := errs[0]
	code, _ := e.Extensions["code"].(string)
	if r.anyValue {
		if code != string(CodeUnauthenticated) {
			t.Fatalf("%s takes any value; want the resolver's UNAUTHENTICATED, got %s %q", r.typ, code, e.Message)
		}
		return
	}
	if code != string(CodeBadUserInput) {
		t.Fatalf("code %s, want BAD_USER_INPUT: %q", code, e.Message)
	}
	if variable {
		if e.Extensions["variable"] != "v" || !strings.Contains(e.Message, "$v") {
			t.Errorf("does not name the variable $v: %q %v", e.Message, e.Extensions)
		}
		if f, ok := e.Extensions["field"]; ok && f != r.field {
			t.Errorf("extensions.field = %v, want %s", f, r.field)
		}
		return
	}
	if e.Extensions["field"] != r.field || !strings.Contains(e.Message, r.field) {
		t.Errorf("does not name the argument %s: %q %v", r.field, e.Message, e.Extensions)
	}
}

// The table covers every scalar and enum that appears in an argument or an input field of the
// schema, so a new one fails here until it has a row.
func TestScalarRowsCoverTheSchema(t *testing.T) {
	schema := NewExecutableSchema(Config{Resolvers: &Resolver{}}).Schema()
	inputs := map[string]bool{}
	var add func(t *ast.Type)
	add = func(t *ast.Type) {
		def := schema.Types[t.Name()]
		if def == nil || strings.HasPrefix(def.Name, "__") || inputs[def.Name] {
			return
		}
		switch def.Kind {
		case ast.Scalar, ast.Enum:
			inputs[def.Name] = true
		case ast.InputObject:
			inputs[def.Name] = true
			for _, f := range def.Fields {
				add(f.Type)
			}
		}
	}
	for name, def := range schema.Types {
		if strings.HasPrefix(name, "__") {
			continue
		}
		for _, f := range def.Fields {
			for _, a := range f.Arguments {
				add(a.Type)
			}
		}
	}
	covered := map[string]bool{}
	for _, r := range scalarRows {
		covered[r.typ] = true
	}
	for name := range inputs {
		if def := schema.Types[name]; def.Kind != ast.InputObject && !covered[name] {
			t.Errorf("input type %s has no row in scalarRows", name)
		}
	}
}

// FuzzScalarArguments sends any value, as a variable and written inline, wherever the schema
// takes a scalar or an enum. Whatever it is, the answer is BAD_USER_INPUT or the resolver's own
// UNAUTHENTICATED: a value never makes an INTERNAL error.
func FuzzScalarArguments(f *testing.F) {
	h := scalarHandler(f)
	for i, r := range scalarRows {
		b, _ := json.Marshal(r.value)
		f.Add(uint8(i), string(b), r.inline)
	}
	f.Add(uint8(0), `"2026-05-01T09:00:00+08:00"`, `"2026-05-01 09:00:00"`)
	f.Add(uint8(2), `9007199254740993`, `-0`)
	f.Add(uint8(9), `null`, `null`)
	f.Fuzz(func(t *testing.T, row uint8, variable, literal string) {
		r := scalarRows[int(row)%len(scalarRows)]
		var v any
		if err := json.Unmarshal([]byte(variable), &v); err != nil {
			v = variable
		}
		for _, body := range []map[string]any{
			{"query": fmt.Sprintf(r.query, "$v"), "variables": map[string]any{"v": v}},
			{"query": r.inlineQuery(literal)},
		} {
			for _, e := range postScalar(t, h, body) {
				code, _ := e.Extensions["code"].(string)
				if !slices.Contains([]string{string(CodeBadUserInput), string(CodeUnauthenticated)}, code) {
					t.Fatalf("%s: code %s %q", body["query"], code, e.Message)
				}
			}
		}
	})
}
