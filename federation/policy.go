package federation

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Metadata policy (spec §6.1).
//
// A Policy is the metadata_policy claim's three levels (§6.1.2): entity type → metadata
// parameter → operator → operator value. Only the seven standard operators (§6.1.3.1) are
// understood; other operators are ignored (§6.1.3.2) unless listed in metadata_policy_crit,
// in which case the statement is refused when parsed (ReasonUnsupportedCritical).
type Policy map[string]TypePolicy

// TypePolicy is the policy for one entity type: parameter name (with an optional "#lang"
// tag, §6.1.2) → its operators.
type TypePolicy map[string]ParamPolicy

// ParamPolicy is the operators of one parameter and their values as decoded JSON; a "value"
// operator of JSON null is present with a nil value.
type ParamPolicy map[string]any

// Standard operators in their order of application (§6.1.3.1.1–§6.1.3.1.7: value first,
// then add, default, one_of, subset_of, superset_of, essential last).
const (
	OpValue      = "value"
	OpAdd        = "add"
	OpDefault    = "default"
	OpOneOf      = "one_of"
	OpSubsetOf   = "subset_of"
	OpSupersetOf = "superset_of"
	OpEssential  = "essential"
)

var operatorOrder = []string{OpValue, OpAdd, OpDefault, OpOneOf, OpSubsetOf, OpSupersetOf, OpEssential}

func standardOperator(op string) bool { return slices.Contains(operatorOrder, op) }

func policyErr(typ, param string, ops []string, format string, args ...any) *PolicyError {
	return &PolicyError{EntityType: typ, Parameter: param, Operators: ops, Detail: fmt.Sprintf(format, args...)}
}

// Validate checks the structure, each operator's value type (§6.1.3.1) and that every
// parameter policy holds only allowed combinations (§6.1.4.1). It returns a *PolicyError.
func (p Policy) Validate() error {
	for _, typ := range sortedKeys(p) {
		if p[typ] == nil {
			return policyErr(typ, "", nil, "entity type policy is null")
		}
		for _, param := range sortedKeys(p[typ]) {
			if err := p[typ][param].validate(typ, param); err != nil {
				return err
			}
		}
	}
	return nil
}

func (pp ParamPolicy) validate(typ, param string) error {
	if pp == nil {
		return policyErr(typ, param, nil, "parameter policy is null")
	}
	for op, v := range pp {
		switch op {
		case OpValue:
			// string, number, boolean, array, null (objects accepted, §6.1.3.1.8)
		case OpAdd, OpOneOf, OpSubsetOf, OpSupersetOf:
			if _, ok := v.([]any); !ok {
				return policyErr(typ, param, []string{op}, "operator value is not an array")
			}
		case OpDefault:
			if v == nil {
				return policyErr(typ, param, []string{op}, "operator value is null")
			}
		case OpEssential:
			if _, ok := v.(bool); !ok {
				return policyErr(typ, param, []string{op}, "operator value is not a boolean")
			}
		}
	}
	return pp.checkCombinations(typ, param)
}

// checkCombinations applies each standard operator's "Combination with other operators"
// rules (§6.1.3.1.1–§6.1.3.1.7).
func (pp ParamPolicy) checkCombinations(typ, param string) error {
	has := func(op string) bool { _, ok := pp[op]; return ok }
	set := func(op string) []any { return asSet(param, pp[op]) }
	if has(OpValue) {
		val := pp[OpValue]
		if has(OpAdd) && !subset(set(OpAdd), asSet(param, val)) {
			return policyErr(typ, param, []string{OpValue, OpAdd}, "the values of add are not a subset of value")
		}
		if has(OpDefault) && val == nil {
			return policyErr(typ, param, []string{OpValue, OpDefault}, "value is null")
		}
		if has(OpOneOf) && !contains(set(OpOneOf), scalarForm(param, val)) {
			return policyErr(typ, param, []string{OpValue, OpOneOf}, "value %s is not among one_of", compact(val))
		}
		if has(OpSubsetOf) && !subset(asSet(param, val), set(OpSubsetOf)) {
			return policyErr(typ, param, []string{OpValue, OpSubsetOf}, "the values of value are not a subset of subset_of")
		}
		if has(OpSupersetOf) && !subset(set(OpSupersetOf), asSet(param, val)) {
			return policyErr(typ, param, []string{OpValue, OpSupersetOf}, "the values of value are not a superset of superset_of")
		}
		if has(OpEssential) && val == nil && pp[OpEssential] == true {
			return policyErr(typ, param, []string{OpValue, OpEssential}, "value null with essential true")
		}
	}
	// one_of combines only with value, default and essential (§6.1.3.1.4).
	if has(OpOneOf) {
		for _, op := range []string{OpAdd, OpSubsetOf, OpSupersetOf} {
			if has(op) {
				return policyErr(typ, param, []string{OpOneOf, op}, "one_of cannot be combined with %s", op)
			}
		}
	}
	if has(OpAdd) && has(OpSubsetOf) && !subset(set(OpAdd), set(OpSubsetOf)) {
		return policyErr(typ, param, []string{OpAdd, OpSubsetOf}, "the values of add are not a subset of subset_of")
	}
	if has(OpSubsetOf) && has(OpSupersetOf) && !subset(set(OpSupersetOf), set(OpSubsetOf)) {
		return policyErr(typ, param, []string{OpSubsetOf, OpSupersetOf}, "subset_of is not a superset of superset_of")
	}
	return nil
}

// MergePolicies merges a subordinate statement's policy into the current (superior) one
// (§6.1.4.1): entity types and parameters missing from the current one are copied; operators
// present in both are merged per operator (§6.1.3.1: value and default must be equal, add and
// superset_of unite, one_of and subset_of intersect, essential ORs); the merged parameter
// policy must still hold only allowed combinations. Neither argument is modified. The error
// is a *PolicyError naming the parameter and the operators.
func MergePolicies(current, next Policy) (Policy, error) {
	if err := current.Validate(); err != nil {
		return nil, err
	}
	if err := next.Validate(); err != nil {
		return nil, err
	}
	out := current.Clone()
	if out == nil && next != nil {
		out = Policy{}
	}
	for _, typ := range sortedKeys(next) {
		if out[typ] == nil {
			out[typ] = TypePolicy{}
		}
		for _, param := range sortedKeys(next[typ]) {
			sub := next[typ][param]
			cur, ok := out[typ][param]
			if !ok {
				out[typ][param] = sub.clone()
				continue
			}
			merged, err := mergeParam(typ, param, cur, sub)
			if err != nil {
				return nil, err
			}
			out[typ][param] = merged
		}
	}
	return out, nil
}

func mergeParam(typ, param string, cur, sub ParamPolicy) (ParamPolicy, error) {
	out := cur.clone()
	for _, op := range operatorOrder {
		sv, ok := sub[op]
		if !ok {
			continue
		}
		cv, ok := out[op]
		if !ok {
			out[op] = cloneValue(sv)
			continue
		}
		switch op {
		case OpValue, OpDefault:
			if !equalJSON(scalarOrSet(param, cv), scalarOrSet(param, sv)) {
				return nil, policyErr(typ, param, []string{op}, "superior %s and subordinate %s differ", compact(cv), compact(sv))
			}
		case OpAdd, OpSupersetOf:
			out[op] = union(cv.([]any), sv.([]any))
		case OpOneOf:
			in := intersect(cv.([]any), sv.([]any))
			if len(in) == 0 {
				return nil, policyErr(typ, param, []string{op}, "superior %s and subordinate %s have no value in common", compact(cv), compact(sv))
			}
			out[op] = in
		case OpSubsetOf:
			out[op] = intersect(cv.([]any), sv.([]any))
		case OpEssential:
			out[op] = cv.(bool) || sv.(bool)
		}
	}
	if err := out.checkCombinations(typ, param); err != nil {
		err.(*PolicyError).Detail = "after merging: " + err.(*PolicyError).Detail
		return nil, err
	}
	return out, nil
}

// ResolvePolicy merges the policies of a chain's subordinate statements, most superior first
// (§6.1.4.1). Nil entries (statements without metadata_policy) are skipped.
func ResolvePolicy(policies ...Policy) (Policy, error) {
	var cur Policy
	for _, p := range policies {
		if p == nil {
			continue
		}
		var err error
		if cur, err = MergePolicies(cur, p); err != nil {
			return nil, err
		}
	}
	return cur, nil
}

// Apply applies a resolved policy to metadata (§6.1.4.2): for every entity type present in
// md, each parameter policy's operators in their order. It returns new metadata; md is not
// modified. Policies for entity types md does not have are not applied (a policy binds to an
// entity type the subject declares, §6.1.1). The error is a *PolicyError.
func (p Policy) Apply(md Metadata) (Metadata, error) {
	out := md.Clone()
	for _, typ := range sortedKeys(out) {
		tp, ok := p[typ]
		if !ok {
			continue
		}
		params, err := tp.Apply(typ, out[typ])
		if err != nil {
			return nil, err
		}
		out[typ] = params
	}
	return out, nil
}

// Apply applies the policy of one entity type to its parameters, returning new parameters.
func (tp TypePolicy) Apply(typ string, params map[string]any) (map[string]any, error) {
	out := cloneObject(params)
	if out == nil {
		out = map[string]any{}
	}
	for _, param := range sortedKeys(tp) {
		v, present, err := tp[param].apply(typ, param, out[param], hasKey(out, param))
		if err != nil {
			return nil, err
		}
		if present {
			out[param] = v
		} else {
			delete(out, param)
		}
	}
	return out, nil
}

func hasKey(m map[string]any, k string) bool { _, ok := m[k]; return ok }

// apply runs one parameter's operators in the standard order (§6.1.3.1).
func (pp ParamPolicy) apply(typ, param string, v any, present bool) (any, bool, error) {
	isScope := param == "scope"
	if isScope && present {
		if s, ok := v.(string); ok {
			v = splitScope(s)
		}
	}
	for _, op := range operatorOrder {
		ov, ok := pp[op]
		if !ok {
			continue
		}
		fail := func(format string, args ...any) (any, bool, error) {
			return nil, false, policyErr(typ, param, []string{op}, format, args...)
		}
		switch op {
		case OpValue:
			if ov == nil {
				v, present = nil, false
			} else {
				v, present = scopeArray(param, cloneValue(ov)), true
			}
		case OpAdd:
			if !present {
				v, present = cloneValue(ov), true
				continue
			}
			arr, ok := v.([]any)
			if !ok {
				return fail("metadata value %s is not an array", compact(v))
			}
			v = union(arr, ov.([]any))
		case OpDefault:
			if !present {
				v, present = scopeArray(param, cloneValue(ov)), true
			}
		case OpOneOf:
			if !present {
				continue
			}
			sv := v
			if isScope {
				sv = joinScope(v)
			}
			if _, isArr := sv.([]any); isArr {
				return fail("metadata value %s is an array", compact(v))
			}
			if !contains(ov.([]any), sv) {
				return fail("metadata value %s is not one of %s", compact(sv), compact(ov))
			}
		case OpSubsetOf:
			if !present {
				continue
			}
			arr, ok := v.([]any)
			if !ok {
				return fail("metadata value %s is not an array", compact(v))
			}
			v = intersect(arr, ov.([]any))
		case OpSupersetOf:
			if !present {
				continue
			}
			arr, ok := v.([]any)
			if !ok {
				return fail("metadata value %s is not an array", compact(v))
			}
			if !subset(ov.([]any), arr) {
				return fail("metadata value %s does not contain all of %s", compact(v), compact(ov))
			}
		case OpEssential:
			if ov == true && !present {
				return fail("essential parameter is absent")
			}
		}
	}
	if isScope && present {
		v = joinScope(v)
	}
	return v, present, nil
}

// The scope parameter is a space-separated string handled as an array of strings (§6.1.3.1.8).
func splitScope(s string) []any {
	out := []any{}
	for _, f := range strings.Fields(s) {
		out = append(out, f)
	}
	return out
}

func joinScope(v any) any {
	arr, ok := v.([]any)
	if !ok {
		return v
	}
	parts := make([]string, 0, len(arr))
	for _, e := range arr {
		s, ok := e.(string)
		if !ok {
			return v
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

func scopeArray(param string, v any) any {
	if s, ok := v.(string); ok && param == "scope" {
		return splitScope(s)
	}
	return v
}

// asSet is an operator or metadata value seen as a set: an array's elements, nothing for
// null, a scalar as itself (a scope string as its scope values).
func asSet(param string, v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		return x
	case string:
		if param == "scope" {
			return splitScope(x)
		}
	}
	return []any{v}
}

func scalarForm(param string, v any) any {
	if param == "scope" {
		return joinScope(v)
	}
	return v
}

func scalarOrSet(param string, v any) any {
	if _, ok := v.([]any); ok {
		return sortedSet(v.([]any))
	}
	if s, ok := v.(string); ok && param == "scope" {
		return sortedSet(splitScope(s))
	}
	return v
}

func sortedSet(a []any) []string {
	out := make([]string, len(a))
	for i, e := range a {
		out[i] = canonical(e)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

func contains(set []any, v any) bool {
	c := canonical(v)
	for _, e := range set {
		if canonical(e) == c {
			return true
		}
	}
	return false
}

func subset(a, b []any) bool {
	for _, e := range a {
		if !contains(b, e) {
			return false
		}
	}
	return true
}

// union keeps a's order then appends b's values not yet present.
func union(a, b []any) []any {
	out := make([]any, 0, len(a)+len(b))
	for _, e := range slices.Concat(a, b) {
		if !contains(out, e) {
			out = append(out, cloneValue(e))
		}
	}
	return out
}

// intersect keeps a's order.
func intersect(a, b []any) []any {
	out := []any{}
	for _, e := range a {
		if contains(b, e) && !contains(out, e) {
			out = append(out, cloneValue(e))
		}
	}
	return out
}

func equalJSON(a, b any) bool { return canonical(a) == canonical(b) }

func compact(v any) string { return strings.TrimSpace(canonical(v)) }

// Clone returns a deep copy.
func (p Policy) Clone() Policy {
	if p == nil {
		return nil
	}
	out := make(Policy, len(p))
	for typ, tp := range p {
		ntp := make(TypePolicy, len(tp))
		for param, pp := range tp {
			ntp[param] = pp.clone()
		}
		out[typ] = ntp
	}
	return out
}

func (pp ParamPolicy) clone() ParamPolicy {
	out := make(ParamPolicy, len(pp))
	for op, v := range pp {
		out[op] = cloneValue(v)
	}
	return out
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// UnmarshalJSON keeps a "value": null operator as present with a nil value, and refuses a
// parameter policy that is not a JSON object.
func (pp *ParamPolicy) UnmarshalJSON(b []byte) error {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*pp = m
	return nil
}
