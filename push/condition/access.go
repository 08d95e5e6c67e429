package condition

import (
	"fmt"

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
func factReads(parsed *cel.Ast) ([]FactRead, []Problem) {
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
	seen := map[string]bool{}
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
			if name != "person" && name != "event" {
				continue
			}
			if _, ok := operandOf(e); !ok {
				refuse(e.ID(), "%s may only be read field by field (such as %s.%s): used whole it would carry every fact", name, name, map[string]string{"person": "age", "event": "type"}[name])
			}
		case ast.SelectKind:
			sel := e.AsSelect()
			if sel.IsTestOnly() || sel.Operand().Kind() != ast.IdentKind {
				continue
			}
			whole := sel.Operand().AsIdent() + "." + sel.FieldName()
			if whole != "person.facts" && whole != "event.attributes" {
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
	return reads, problems
}
