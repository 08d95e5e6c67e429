package condition

import (
	"fmt"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
)

// FactRead is one fact a condition reads and where (1-based line and column, as in Problem).
type FactRead struct {
	Name         string
	Line, Column int
}

// factReads finds the facts a parsed condition reads, and refuses every way of reading facts
// that does not name them: indexing (person.facts[k]), iterating (person.facts.exists(...)),
// using person.facts or event.attributes whole, or person or event whole (which would carry
// every fact into a list or a function). A rule may then read exactly the facts it names, and
// the catalog can check each against the rule's department before the rule is accepted.
//
// It also returns the ids of the person and event identifiers it judged, for unjudged: every
// reference to either variable must be one of them.
func factReads(parsed *cel.Ast) ([]FactRead, []Problem, map[int64]bool) {
	native := parsed.NativeRep()
	info := native.SourceInfo()
	at := func(id int64) (int, int) {
		loc := info.GetStartLocation(id)
		if loc.Line() <= 0 {
			return 0, 0
		}
		return loc.Line(), max(loc.Column(), 0) + 1
	}
	var reads []FactRead
	var problems []Problem
	seen, judged := map[string]bool{}, map[int64]bool{}
	refuse := func(id int64, format string, args ...any) {
		if len(problems) == maxProblems {
			return
		}
		l, c := at(id)
		problems = append(problems, Problem{Message: fmt.Sprintf(format, args...), Line: l, Column: c})
	}
	// operandOf reports whether e is the operand of a field selection, and that selection.
	operandOf := func(e ast.NavigableExpr) (ast.NavigableExpr, bool) {
		p, ok := e.Parent()
		if !ok || p.Kind() != ast.SelectKind || p.AsSelect().Operand().ID() != e.ID() {
			return nil, false
		}
		return p, true
	}
	all := ast.MatchDescendants(ast.NavigateAST(native), ast.AllMatcher())
	for _, e := range all {
		switch e.Kind() {
		case ast.IdentKind:
			name := e.AsIdent()
			if strings.HasPrefix(name, ".") {
				// CEL reads ".person" as person looked up from the root: the same variable under
				// a name the checks below would not recognise.
				refuse(e.ID(), "%s: a name with a leading dot is not allowed in a condition; write %s", name, strings.TrimPrefix(name, "."))
				continue
			}
			if name != "person" && name != "event" {
				continue
			}
			judged[e.ID()] = true
			if _, ok := operandOf(e); !ok {
				refuse(e.ID(), "%s may only be read field by field (such as %s.%s): used whole it would carry every fact", name, name, map[string]string{"person": "age", "event": "type"}[name])
			}
		case ast.SelectKind:
			sel := e.AsSelect()
			if sel.Operand().Kind() != ast.IdentKind {
				continue
			}
			whole := sel.Operand().AsIdent() + "." + sel.FieldName()
			if whole != "person.facts" && whole != "event.attributes" {
				continue
			}
			if sel.IsTestOnly() {
				refuse(e.ID(), "has(%s) tests the facts whole; test one declared fact: has(%s.monthlyIncome)", whole, whole)
				continue
			}
			parent, ok := operandOf(e)
			if !ok {
				refuse(e.ID(), "%s may only be read one declared fact at a time, by name (%s.monthlyIncome); indexing it, iterating over it or using it whole is refused", whole, whole)
				continue
			}
			name := parent.AsSelect().FieldName()
			if whole == "event.attributes" && name == ResidenceAttribute {
				continue // person.residence, not a fact
			}
			if !seen[name] {
				seen[name] = true
				l, c := at(parent.ID())
				reads = append(reads, FactRead{Name: name, Line: l, Column: c})
			}
		}
	}
	return reads, problems, judged
}

// unjudged refuses every reference of a checked condition to the person or event variable that
// factReads did not judge. factReads recognises the variables by the names written; the
// checker resolves names its own way, so any spelling it resolves to a variable that factReads
// did not see would read facts unchecked. Nothing known reaches here (a leading dot is refused
// above); it is the second lock on the same door.
func unjudged(checked *cel.Ast, judged map[int64]bool) []Problem {
	native := checked.NativeRep()
	var problems []Problem
	for id, ref := range native.ReferenceMap() {
		if ref == nil || ref.Value != nil || (ref.Name != "person" && ref.Name != "event") || judged[id] {
			continue
		}
		p := Problem{Message: fmt.Sprintf("%s is referred to in a way a condition may not use; write %s.<field>", ref.Name, ref.Name)}
		if loc := native.SourceInfo().GetStartLocation(id); loc.Line() > 0 {
			p.Line, p.Column = loc.Line(), max(loc.Column(), 0)+1
		}
		problems = append(problems, p)
	}
	return problems
}
