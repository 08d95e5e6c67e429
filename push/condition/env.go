package condition

import (
	"fmt"
	"reflect"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/ext"
)

// Limits on a condition. Rules are written by department staff and evaluated for every person
// an event or a backfill reaches, so a condition must stay small and cheap.
const (
	// MaxSourceLen is the longest condition source, in bytes.
	MaxSourceLen = 4096

	// MaxEstimatedCost is the most a condition may cost by the checker's estimate over inputs
	// within the size hints (see sizeHints). The sample rules cost under 20 and a scan of all
	// facts with a comparison per entry about 2,300; a scan nested in another scan of the facts
	// costs millions.
	MaxEstimatedCost = 10_000

	// MaxRuntimeCost stops an evaluation of a condition with a comprehension that costs more
	// than this. It sits well above MaxEstimatedCost because the estimate assumes inputs within
	// the size hints, which a profile may exceed; it is there to bound the damage, not to
	// second-guess the checker.
	MaxRuntimeCost = 10 * MaxEstimatedCost

	// maxRegexProgram bounds the compiled size of a regular expression given to matches(),
	// including one read from a fact at run time. Realistic patterns (an ID or phone number
	// format) compile to well under a hundred instructions.
	maxRegexProgram = 1000

	// maxProblems caps the problems Compile reports, since a mangled source can produce one per
	// token and the author fixes the first few first.
	maxProblems = 20
)

// sizeHints are the sizes the cost estimate assumes: the largest profile and event the
// estimate has to be right for. Nothing enforces them at run time except MaxRuntimeCost.
const (
	maxFacts       = 256  // entries in person.facts and in event.attributes
	maxApps        = 16   // entries in person.apps
	maxStringBytes = 1024 // bytes in any string
	maxNested      = 256  // entries in a list or map held in a fact or an attribute
)

// Env compiles conditions. One Env serves the whole process; it is safe for concurrent use.
type Env struct {
	cel   *cel.Env
	facts factTable

	// runtimeLimit is MaxRuntimeCost; tests lower it to reach the limit cheaply.
	runtimeLimit uint64
}

// NewEnv declares `person`, `event` and `now` over the Go types Person and Event, with
// person.facts and event.attributes typed by the declared facts: a rule reads only those, one
// by name at a time.
func NewEnv(facts ...Fact) (*Env, error) {
	table, err := newFactTable(facts)
	if err != nil {
		return nil, err
	}
	env, err := cel.NewEnv(
		ext.NativeTypes(reflect.TypeFor[Person](), reflect.TypeFor[Event](), ext.ParseStructTags(true)),
		withFastFields(table),
		cel.Variable("person", cel.ObjectType(personTypeName)),
		cel.Variable("event", cel.ObjectType(eventTypeName)),
		cel.Variable("now", cel.TimestampType),
		// Rules mix ints and doubles the way people write numbers (`person.age < 60.5`, a fact
		// stored as 2999.5 against 3000): compare them by value instead of refusing the overload.
		cel.CrossTypeNumericComparisons(true),
		cel.RegexProgramSizeLimit(maxRegexProgram),
		// Bad literals are the author's mistake: report them with their position at compile time
		// rather than as an error on every evaluation.
		cel.ASTValidators(cel.ValidateDurationLiterals(), cel.ValidateTimestampLiterals(), cel.ValidateRegexLiterals()),
	)
	if err != nil {
		return nil, fmt.Errorf("condition: build CEL environment: %w", err)
	}
	return &Env{cel: env, facts: table, runtimeLimit: MaxRuntimeCost}, nil
}

// The names NativeTypes gives Person and Event: the package's last path element and the type name.
var (
	personTypeName = celTypeName[Person]()
	eventTypeName  = celTypeName[Event]()
)

func celTypeName[T any]() string {
	t := reflect.TypeFor[T]()
	return t.PkgPath()[strings.LastIndex(t.PkgPath(), "/")+1:] + "." + t.Name()
}

// withFastFields installs provider over the registry NativeTypes filled.
func withFastFields(facts factTable) cel.EnvOption {
	return func(e *cel.Env) (*cel.Env, error) {
		reg, ok := e.CELTypeProvider().(*types.Registry)
		if !ok {
			return nil, fmt.Errorf("condition: want the native type registry, got %T", e.CELTypeProvider())
		}
		return cel.CustomTypeProvider(provider{Registry: reg, facts: facts})(e)
	}
}

// Problem is one reason Compile refused a condition. Line and Column are 1-based, with the column
// counted in characters (Unicode code points); both are 0 when the problem is the condition as a
// whole. Message is CEL's own wording for syntax and type errors.
type Problem struct {
	Message string
	Line    int
	Column  int
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%d:%d: %s", p.Line, p.Column, p.Message)
	}
	return p.Message
}

// Compile checks a condition and prepares it for evaluation. It returns either a Condition or at
// least one Problem, never both.
func (e *Env) Compile(src string) (*Condition, []Problem) { return e.CompileFor(src, nil) }

// CompileFor is Compile for a reader that may read only some facts: allowed judges the facts the
// condition names and returns a problem for each it may not read. It runs before type checking,
// so an author learns that a fact is off limits before any type error about it (which would say
// what type the fact has). nil allows every declared fact.
func (e *Env) CompileFor(src string, allowed func([]FactRead) []Problem) (*Condition, []Problem) {
	if strings.TrimSpace(src) == "" {
		return nil, []Problem{{Message: "the condition is empty"}}
	}
	if len(src) > MaxSourceLen {
		return nil, []Problem{{Message: fmt.Sprintf("the condition is %d bytes long; the limit is %d", len(src), MaxSourceLen)}}
	}
	parsed, iss := e.cel.Parse(src)
	if iss.Err() != nil {
		return nil, issueProblems(iss.Errors())
	}
	reads, problems, judged := factReads(parsed)
	if len(problems) == 0 && allowed != nil {
		problems = allowed(reads)
	}
	if len(problems) > 0 {
		return nil, problems
	}
	checked, iss := e.cel.Check(parsed)
	if iss.Err() != nil {
		return nil, issueProblems(iss.Errors())
	}
	if problems := unjudged(checked, judged); len(problems) > 0 {
		return nil, problems
	}
	if t := checked.OutputType(); !t.IsExactType(types.BoolType) {
		return nil, []Problem{{Message: fmt.Sprintf(
			"the condition must be a bool expression, but its type is %s; compare it with something",
			t)}}
	}
	est, err := e.cel.EstimateCost(checked, sizeHints{})
	if err != nil {
		return nil, []Problem{{Message: fmt.Sprintf("cannot estimate the cost: %v", err)}}
	}
	if est.Max > MaxEstimatedCost {
		return nil, []Problem{{Message: fmt.Sprintf(
			"the condition is too costly: estimated cost %s exceeds the limit of %d (each comprehension over facts, attributes or a list multiplies the cost of what it contains)",
			costString(est.Max), MaxEstimatedCost)}}
	}
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	if hasComprehension(checked) {
		// Only a comprehension (all, exists, map, filter) runs part of a condition more than once,
		// so only a comprehension can cost more than the estimate scaled by how far the inputs
		// exceed the size hints. Without one every part runs at most once over values no larger
		// than the inputs; tracking that costs more than the evaluation itself (about 1 µs and 7
		// allocations for the sample rules).
		opts = append(opts, cel.CostLimit(e.runtimeLimit))
	}
	prg, err := e.cel.Program(checked, opts...)
	if err != nil {
		return nil, []Problem{{Message: fmt.Sprintf("cannot prepare the condition: %v", err)}}
	}
	return &Condition{src: src, prg: prg, reads: reads}, nil
}

func hasComprehension(a *cel.Ast) bool {
	found := false
	ast.PostOrderVisit(a.NativeRep().Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if e.Kind() == ast.ComprehensionKind {
			found = true
		}
	}))
	return found
}

func costString(c uint64) string {
	if c == ^uint64(0) {
		return "unbounded"
	}
	return fmt.Sprint(c)
}

func issueProblems(errs []*cel.Error) []Problem {
	out := make([]Problem, 0, min(len(errs), maxProblems))
	for i, e := range errs {
		if i == maxProblems {
			out = append(out, Problem{Message: fmt.Sprintf("and %d more problems", len(errs)-maxProblems)})
			break
		}
		p := Problem{Message: e.Message}
		if e.Location != nil && e.Location.Line() > 0 {
			p.Line = e.Location.Line()
			p.Column = max(e.Location.Column(), 0) + 1
		}
		out = append(out, p)
	}
	return out
}

// sizeHints is the cost estimator: it tells the checker how large the inputs can be, since CEL
// otherwise assumes any list, map or string may be unbounded and every comprehension costs
// "unbounded". It leaves call costs to CEL's standard model.
type sizeHints struct{}

func (sizeHints) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

func (sizeHints) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	if p := n.Path(); len(p) == 2 {
		switch p[0] + "." + p[1] {
		case "person.facts", "event.attributes":
			return sizeUpTo(maxFacts)
		case "person.apps":
			return sizeUpTo(maxApps)
		}
	}
	switch n.Type().Kind() {
	case types.StringKind, types.BytesKind:
		return sizeUpTo(maxStringBytes)
	case types.ListKind, types.MapKind, types.DynKind:
		// A fact's or attribute's value may be a list or a map from JSON.
		return sizeUpTo(maxNested)
	case types.StructKind:
		// Comparing structs, as in `person.hukou == person.residence`, walks their fields; a
		// Region, the one worth comparing, is four strings.
		return sizeUpTo(4 * maxStringBytes)
	}
	return nil
}

func sizeUpTo(n uint64) *cost.SizeEstimate {
	s := cost.RangedSizeEstimate(0, n)
	return &s
}
