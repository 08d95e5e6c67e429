package condition

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"time"

	"cel.dev/cel-go/common/types"
)

// FactType is the declared type of a fact: what `person.facts.<name>` is to the type checker
// and what an event's attribute of that name must hold.
type FactType string

// The fact types a catalog may declare.
const (
	FactBool       FactType = "bool"
	FactInt        FactType = "int"
	FactDouble     FactType = "double"
	FactString     FactType = "string"
	FactTimestamp  FactType = "timestamp"
	FactStringList FactType = "list(string)"
)

// FactTypes lists the declarable types, in the order the catalog documents them.
func FactTypes() []FactType {
	return []FactType{FactBool, FactInt, FactDouble, FactString, FactTimestamp, FactStringList}
}

func (t FactType) celType() *types.Type {
	switch t {
	case FactBool:
		return types.BoolType
	case FactInt:
		return types.IntType
	case FactDouble:
		return types.DoubleType
	case FactString:
		return types.StringType
	case FactTimestamp:
		return types.TimestampType
	case FactStringList:
		return types.NewListType(types.StringType)
	}
	return nil
}

// Fact is a declared fact as the language needs it: a name rules may write after person.facts.
// and event.attributes., and its type. Who may write or read it is the catalog's business.
type Fact struct {
	Name string
	Type FactType
}

// FactName is the shape of a fact's name: a CEL identifier, so a rule can write
// person.facts.childBirthDate.
var FactName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// ResidenceAttribute is the one attribute that is not a fact: it sets person.residence, and a
// rule may read it from event.attributes whatever its department.
const ResidenceAttribute = "residence"

// The CEL types of person.facts and event.attributes: structs whose fields are the declared
// facts, so that a typo is a compile error and a fact's type is known to the checker. A struct
// cannot be indexed or iterated over, which refuses dynamic access for free; Compile still
// looks for it first to say so plainly.
const (
	factsTypeName      = "condition.Facts"
	attributesTypeName = "condition.Attributes"
)

// factTable is the declared facts by name.
type factTable map[string]Fact

func newFactTable(facts []Fact) (factTable, error) {
	t := make(factTable, len(facts))
	for _, f := range facts {
		switch {
		case !FactName.MatchString(f.Name):
			return nil, fmt.Errorf("condition: fact name %q is not an identifier", f.Name)
		case f.Type.celType() == nil:
			return nil, fmt.Errorf("condition: fact %s: unknown type %q", f.Name, f.Type)
		case f.Name == ResidenceAttribute:
			return nil, fmt.Errorf("condition: fact %s: the name is reserved for person.residence", f.Name)
		}
		if _, dup := t[f.Name]; dup {
			return nil, fmt.Errorf("condition: fact %s is declared twice", f.Name)
		}
		t[f.Name] = f
	}
	return t, nil
}

func (t factTable) names(withResidence bool) []string {
	out := make([]string, 0, len(t)+1)
	for n := range t {
		out = append(out, n)
	}
	if withResidence {
		out = append(out, ResidenceAttribute)
	}
	slices.Sort(out)
	return out
}

// fieldType is how the interpreter reads one declared fact out of the map a profile or an event
// holds: present when the key is, and the value as Value left it. Reading an absent fact is an
// error, as reading an absent map key was before facts were declared, so that a rule that does
// not guard with has() does not match rather than matching on a zero.
func (f Fact) fieldType() *types.FieldType {
	name := f.Name
	return &types.FieldType{
		Type: f.Type.celType(),
		IsSet: func(o any) bool {
			m, _ := o.(map[string]any)
			_, ok := m[name]
			return ok
		},
		GetFrom: func(o any) (any, error) {
			m, _ := o.(map[string]any)
			v, ok := m[name]
			if !ok {
				return nil, fmt.Errorf("no such fact: %s", name)
			}
			return v, nil
		},
	}
}

// residenceFieldType is event.attributes.residence: whatever the event sent, as JSON.
var residenceFieldType = &types.FieldType{
	Type: types.DynType,
	IsSet: func(o any) bool {
		m, _ := o.(map[string]any)
		_, ok := m[ResidenceAttribute]
		return ok
	},
	GetFrom: func(o any) (any, error) {
		m, _ := o.(map[string]any)
		v, ok := m[ResidenceAttribute]
		if !ok {
			return nil, fmt.Errorf("no such attribute: %s", ResidenceAttribute)
		}
		return v, nil
	},
}

// Value checks a value (as Normalize or DecodeValue left it) against the declared type of the
// fact and returns it as rules see it: an int for an int, a float64 for a double (an integral
// JSON number is one too), a time.Time for a timestamp (RFC 3339 text), a []string for a
// list(string). nil stays nil: it deletes the fact. An undeclared name is ErrUndeclared.
func (e *Env) Value(name string, v any) (any, error) {
	f, ok := e.facts[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUndeclared, name)
	}
	if v == nil {
		return nil, nil
	}
	return f.Type.value(v)
}

// ErrUndeclared is a fact the catalog does not declare.
var ErrUndeclared = errors.New("condition: undeclared fact")

func (t FactType) value(v any) (any, error) {
	bad := func() (any, error) { return nil, fmt.Errorf("want %s, got %s", t.describe(), kindOf(v)) }
	switch t {
	case FactBool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case FactInt:
		switch n := v.(type) {
		case int64:
			return n, nil
		case float64:
			return nil, fmt.Errorf("want a whole number, got %v", n)
		}
	case FactDouble:
		switch n := v.(type) {
		case int64:
			return float64(n), nil
		case float64:
			if math.IsNaN(n) || math.IsInf(n, 0) {
				return bad()
			}
			return n, nil
		}
	case FactString:
		if s, ok := v.(string); ok {
			return s, nil
		}
	case FactTimestamp:
		switch x := v.(type) {
		case time.Time:
			return x, nil
		case string:
			ts, err := time.Parse(time.RFC3339Nano, x)
			if err != nil {
				return nil, fmt.Errorf("want an RFC 3339 time such as 2026-11-27T10:00:00+08:00, got %q", x)
			}
			return ts, nil
		}
	case FactStringList:
		switch l := v.(type) {
		case []string:
			return l, nil
		case []any:
			out := make([]string, len(l))
			for i, e := range l {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("want a list of strings, item %d is %s", i, kindOf(e))
				}
				out[i] = s
			}
			return out, nil
		}
	}
	return bad()
}

func (t FactType) describe() string {
	switch t {
	case FactBool:
		return "a boolean"
	case FactInt:
		return "a whole number"
	case FactDouble:
		return "a number"
	case FactString:
		return "a string"
	case FactTimestamp:
		return "an RFC 3339 time"
	case FactStringList:
		return "a list of strings"
	}
	return string(t)
}

// Declared reports whether the environment declares the fact, and its type.
func (e *Env) Declared(name string) (Fact, bool) {
	f, ok := e.facts[name]
	return f, ok
}

// TypedFacts types every value of a facts map (a preview sample's facts or event attributes)
// with Value; the error names the first fact that is undeclared or of the wrong type. The
// residence attribute, when allowResidence, passes as it is.
func (e *Env) TypedFacts(m map[string]any, allowResidence bool) (map[string]any, error) {
	if m == nil {
		return nil, nil
	}
	out := make(map[string]any, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if allowResidence && k == ResidenceAttribute {
			out[k] = m[k]
			continue
		}
		v, err := e.Value(k, m[k])
		if err != nil {
			if errors.Is(err, ErrUndeclared) {
				return nil, fmt.Errorf("%s is not a declared fact", k)
			}
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		if v != nil {
			out[k] = v
		}
	}
	return out, nil
}
