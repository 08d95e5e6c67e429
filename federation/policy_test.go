package federation

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"slices"
	"testing"
)

// TestPolicySpecExample is §6.1.5 end to end: the trust anchor's and the intermediate's
// policies merge into the spec's merged policy, and applied (after the intermediate's
// metadata, §6.1.4.2) to the leaf's metadata they give the spec's resolved metadata.
func TestPolicySpecExample(t *testing.T) {
	var ex struct {
		EntityType  string   `json:"entity_type"`
		TA          Policy   `json:"trust_anchor_policy"`
		Int         Policy   `json:"intermediate_policy"`
		IntMetadata Metadata `json:"intermediate_metadata"`
		Merged      TypePolicy
		MergedRaw   map[string]ParamPolicy `json:"merged_policy"`
		Leaf        Metadata               `json:"leaf_metadata"`
		Resolved    map[string]any         `json:"resolved_metadata"`
	}
	readJSON(t, "testdata/policy_spec_example.json", &ex)
	merged, err := ResolvePolicy(ex.TA, ex.Int)
	if err != nil {
		t.Fatal(err)
	}
	if !sameJSONSets(merged[ex.EntityType], ex.MergedRaw) {
		t.Fatalf("merged policy\n got %s\nwant %s", compact(merged[ex.EntityType]), compact(ex.MergedRaw))
	}
	md := applySuperiorMetadata(ex.Leaf, ex.IntMetadata)
	out, err := merged.Apply(md)
	if err != nil {
		t.Fatal(err)
	}
	if !sameJSONSets(out[ex.EntityType], ex.Resolved) {
		t.Fatalf("resolved metadata\n got %s\nwant %s", compact(out[ex.EntityType]), compact(ex.Resolved))
	}
}

// sameJSONSets compares JSON values with arrays as sets: the spec says the order of a merged
// operator value is not defined (§6.1.3).
func sameJSONSets(a, b any) bool {
	return reflect.DeepEqual(setNormal(roundTrip(a)), setNormal(roundTrip(b)))
}

func roundTrip(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

func setNormal(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = setNormal(e)
		}
		return out
	case []any:
		return sortedSet(x)
	}
	return v
}

type operatorCase struct {
	Name        string          `json:"name"`
	Spec        string          `json:"spec"`
	Param       string          `json:"param"`
	Superior    ParamPolicy     `json:"superior"`
	Subordinate ParamPolicy     `json:"subordinate"`
	Input       json.RawMessage `json:"input"`
	Merged      ParamPolicy     `json:"merged"`
	Output      json.RawMessage `json:"output"`
	Absent      bool            `json:"absent"`
	Error       Reason          `json:"error"`
	Operators   []string        `json:"operators"`
}

// TestPolicyOperators is the operators table (testdata/policy_operators.json): each
// operator's action, merge and allowed combinations, with the spec section each row checks.
func TestPolicyOperators(t *testing.T) {
	var cases []operatorCase
	readJSON(t, "testdata/policy_operators.json", &cases)
	const typ = "openid_relying_party"
	for _, c := range cases {
		t.Run(c.Spec+" "+c.Name, func(t *testing.T) {
			policies := []Policy{{typ: {c.Param: c.Superior}}}
			if c.Subordinate != nil {
				policies = append(policies, Policy{typ: {c.Param: c.Subordinate}})
			}
			md := Metadata{typ: {}}
			if len(c.Input) > 0 {
				var in any
				if err := json.Unmarshal(c.Input, &in); err != nil {
					t.Fatal(err)
				}
				md[typ][c.Param] = in
			}
			merged, err := ResolvePolicy(policies...)
			var out Metadata
			if err == nil {
				if c.Merged != nil && !sameJSONSets(merged[typ][c.Param], c.Merged) {
					t.Fatalf("merged %s, want %s", compact(merged[typ][c.Param]), compact(c.Merged))
				}
				if c.Merged != nil && len(c.Output) == 0 && !c.Absent && c.Error == "" {
					return // a merge-only row
				}
				out, err = merged.Apply(md)
				if err != nil {
					err = &Error{Reason: ReasonPolicyViolation, Err: err}
				}
			} else {
				err = &Error{Reason: ReasonPolicyError, Err: err}
			}
			if c.Error != "" {
				var pe *PolicyError
				if err == nil || ReasonOf(err) != c.Error || !errors.As(err, &pe) {
					t.Fatalf("got %v, want %s", err, c.Error)
				}
				if pe.Parameter != c.Param || !slices.Equal(pe.Operators, c.Operators) {
					t.Fatalf("error names %s %v, want %s %v", pe.Parameter, pe.Operators, c.Param, c.Operators)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, present := out[typ][c.Param]
			if c.Absent {
				if present {
					t.Fatalf("output %s, want absent", compact(got))
				}
				return
			}
			if len(c.Output) == 0 {
				return
			}
			var want any
			_ = json.Unmarshal(c.Output, &want)
			if !present || !reflect.DeepEqual(roundTrip(got), want) {
				t.Fatalf("output %s, want %s", compact(got), compact(want))
			}
		})
	}
}

func TestPolicyDoesNotModifyInputs(t *testing.T) {
	sup := Policy{"openid_relying_party": {"contacts": {"add": []any{"a"}}}}
	sub := Policy{"openid_relying_party": {"contacts": {"add": []any{"b"}}}}
	before := compact(sup)
	m, err := MergePolicies(sup, sub)
	if err != nil {
		t.Fatal(err)
	}
	md := Metadata{"openid_relying_party": {"contacts": []any{"c"}}}
	if _, err := m.Apply(md); err != nil {
		t.Fatal(err)
	}
	if compact(sup) != before || compact(md) != `{"openid_relying_party":{"contacts":["c"]}}` {
		t.Fatal("inputs modified")
	}
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}
