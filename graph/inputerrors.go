package graph

import (
	"context"
	"fmt"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	validator "github.com/vektah/gqlparser/v2/validator/core"
	"github.com/vektah/gqlparser/v2/validator/rules"
)

// Malformed input reaches gqlgen by two roads, and the two report it differently:
//
//   - Variables are coerced before anything runs (validator.VariableValues). Built-in scalars
//     and enums that do not fit are refused there with a path ["variable", name, …] and the
//     code GRAPHQL_VALIDATION_FAILED, which the presenter maps to BAD_USER_INPUT.
//   - Custom scalars (Time, JSON) pass that step whatever they hold, and every literal written
//     in the query is only checked for its kind by validation: their values are parsed when the
//     field's arguments are unmarshalled, just before its resolver would run. A failure there
//     is a gqlerror with the Go error as its cause, no code, and a path that runs from the
//     field into the argument (["previewPushRule", "input", "validFrom"]). Without
//     argumentError the presenter would take it for a resolver's failure: INTERNAL.
//
// argumentError recognises the second kind by its path, and answers BAD_USER_INPUT naming the
// argument (extensions.field, "input.validFrom") and, when the value came from a variable, the
// variable (extensions.variable), with what the type wants. The Go error's text is not shown:
// gqlgen's scalar errors name Go types ("map[string]interface {} is not a string").
func argumentError(ctx context.Context, schema *ast.Schema, gerr *gqlerror.Error) (*gqlerror.Error, bool) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || fc.Field.Field == nil || fc.Field.Definition == nil || gerr.Err == nil {
		return nil, false
	}
	fieldPath := fc.Path()
	if len(gerr.Path) <= len(fieldPath) || gerr.Path[:len(fieldPath)].String() != fieldPath.String() {
		return nil, false
	}
	rest := gerr.Path[len(fieldPath):]
	argName, ok := rest[0].(ast.PathName)
	if !ok {
		return nil, false
	}
	argDef := fc.Field.Definition.Arguments.ForName(string(argName))
	if argDef == nil {
		return nil, false
	}
	field := pathText(rest)
	typeName := inputTypeAt(schema, argDef.Type, rest[1:])
	what := fmt.Sprintf("argument %s of %s", field, fc.Field.Name)
	out := badInput(field, "")
	if v, inVar := variableAt(fc.Field.Arguments.ForName(string(argName)), rest[1:]); v != "" {
		what = fmt.Sprintf("variable %s (%s)", "$"+v+inVar, what)
		out.Extensions["variable"] = v
	}
	out.Message = fmt.Sprintf("%s is not a valid %s%s", what, typeName, wants(schema, typeName))
	out.Path = fieldPath
	out.Locations = gerr.Locations
	return out, true
}

// pathText writes a path inside an argument as a client would: input.validFrom, events[0].occurredAt.
func pathText(p ast.Path) string {
	var b strings.Builder
	for _, e := range p {
		switch e := e.(type) {
		case ast.PathName:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(string(e))
		case ast.PathIndex:
			fmt.Fprintf(&b, "[%d]", int(e))
		}
	}
	return b.String()
}

// inputTypeAt is the name of the type at path below an argument of type t; "value" when the
// path leaves the schema (which a gqlgen error should never make it do).
func inputTypeAt(schema *ast.Schema, t *ast.Type, path ast.Path) string {
	for _, e := range path {
		if t == nil {
			return "value"
		}
		switch e := e.(type) {
		case ast.PathIndex:
			if t.Elem != nil {
				t = t.Elem
			} // else a single value given for a list, coerced to a list of one
		case ast.PathName:
			def := schema.Types[t.Name()]
			if def == nil {
				return "value"
			}
			f := def.Fields.ForName(string(e))
			if f == nil {
				return "value"
			}
			t = f.Type
		}
	}
	if t == nil {
		return "value"
	}
	return t.Name()
}

// variableAt finds the variable an argument's value at path comes from: its name, and the rest
// of the path inside it (".validFrom", "[0].occurredAt"). "" when the value is written inline.
func variableAt(arg *ast.Argument, path ast.Path) (name, inside string) {
	if arg == nil {
		return "", ""
	}
	v := arg.Value
	for i := 0; v != nil; i++ {
		if v.Kind == ast.Variable {
			return v.Raw, pathSuffix(path[i:])
		}
		if i == len(path) {
			return "", ""
		}
		switch e := path[i].(type) {
		case ast.PathName:
			if v.Kind != ast.ObjectValue {
				return "", ""
			}
			c := v.Children.ForName(string(e))
			v = c
		case ast.PathIndex:
			if v.Kind != ast.ListValue {
				// A single value for a list: index 0 is the value itself.
				continue
			}
			if int(e) >= len(v.Children) {
				return "", ""
			}
			v = v.Children[e].Value
		}
	}
	return "", ""
}

func pathSuffix(p ast.Path) string {
	s := pathText(p)
	if s == "" || strings.HasPrefix(s, "[") {
		return s
	}
	return "." + s
}

// wants says what a type accepts, for the scalars and enums of the schema.
func wants(schema *ast.Schema, typeName string) string {
	switch typeName {
	case "Time":
		return ": want an RFC 3339 date and time, like 2026-05-01T09:00:00+08:00"
	case "ID", "String":
		return ": want a string"
	case "Int":
		return ": want an integer"
	case "Float":
		return ": want a number"
	case "Boolean":
		return ": want true or false"
	}
	if def := schema.Types[typeName]; def != nil && def.Kind == ast.Enum {
		names := make([]string, len(def.EnumValues))
		for i, v := range def.EnumValues {
			names[i] = v.Name
		}
		return ": want one of " + strings.Join(names, ", ")
	}
	if def := schema.Types[typeName]; def != nil && def.Kind == ast.InputObject {
		return ": want an object with its fields"
	}
	return ""
}

// validationRules are gqlparser's default rules with ValuesOfCorrectType naming the argument a
// wrong literal is written for: its own message names the value and the type ("Value "NOPE"
// does not exist in "RuleStatus" enum.") but not where it goes. Without suggestions when
// introspection is off, as gqlgen does for the rules it swaps itself.
func validationRules(suggest bool) func() *rules.Rules {
	inner := rules.ValuesOfCorrectTypeRuleWithoutSuggestions
	if suggest {
		inner = rules.ValuesOfCorrectTypeRule
	}
	return func() *rules.Rules {
		r := rules.NewDefaultRules()
		r.RemoveRule(rules.ValuesOfCorrectTypeRule.Name)
		r.RemoveRule(rules.ValuesOfCorrectTypeRuleWithoutSuggestions.Name)
		r.AddRule(inner.Name, nameLiteralArguments(inner.RuleFunc))
		return r
	}
}

// literalArgument is where a literal value stands in the document: the field (or directive)
// and the path inside its argument.
type literalArgument struct{ field, path string }

// nameLiteralArguments wraps a rule so that each error it reports at a literal argument value
// says which argument, in its message and in extensions.field. The document's argument values
// are indexed by position once, at the first error.
func nameLiteralArguments(inner validator.RuleFunc) validator.RuleFunc {
	return func(observers *validator.Events, addError validator.AddErrFunc) {
		var (
			doc   *ast.QueryDocument
			index map[[2]int]literalArgument
		)
		observers.OnValue(func(w *validator.Walker, _ *ast.Value) { doc = w.Document })
		inner(observers, func(options ...validator.ErrorOption) {
			var probe gqlerror.Error
			for _, o := range options {
				o(&probe)
			}
			if len(probe.Locations) > 0 && doc != nil {
				if index == nil {
					index = indexLiteralArguments(doc)
				}
				loc := probe.Locations[0]
				if a, ok := index[[2]int{loc.Line, loc.Column}]; ok {
					options = append(options, func(err *gqlerror.Error) {
						err.Message = fmt.Sprintf("argument %s of %s: %s", a.path, a.field, err.Message)
						if err.Extensions == nil {
							err.Extensions = map[string]any{}
						}
						err.Extensions["field"] = a.path
					})
				}
			}
			addError(options...)
		})
	}
}

// indexLiteralArguments maps the position of every value written in an argument, at any depth,
// to the argument and the path inside it.
func indexLiteralArguments(doc *ast.QueryDocument) map[[2]int]literalArgument {
	index := map[[2]int]literalArgument{}
	var value func(v *ast.Value, owner, path string)
	value = func(v *ast.Value, owner, path string) {
		if v == nil {
			return
		}
		if v.Position != nil {
			index[[2]int{v.Position.Line, v.Position.Column}] = literalArgument{owner, path}
		}
		for i, c := range v.Children {
			switch v.Kind {
			case ast.ObjectValue:
				// Errors about a field of an object stand at its name.
				if c.Position != nil {
					index[[2]int{c.Position.Line, c.Position.Column}] = literalArgument{owner, path + "." + c.Name}
				}
				value(c.Value, owner, path+"."+c.Name)
			case ast.ListValue:
				value(c.Value, owner, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	directives := func(ds ast.DirectiveList) {
		for _, d := range ds {
			for _, a := range d.Arguments {
				value(a.Value, "@"+d.Name, a.Name)
			}
		}
	}
	var selections func(set ast.SelectionSet)
	selections = func(set ast.SelectionSet) {
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				for _, a := range s.Arguments {
					value(a.Value, s.Name, a.Name)
				}
				directives(s.Directives)
				selections(s.SelectionSet)
			case *ast.InlineFragment:
				directives(s.Directives)
				selections(s.SelectionSet)
			case *ast.FragmentSpread:
				directives(s.Directives)
			}
		}
	}
	for _, op := range doc.Operations {
		for _, v := range op.VariableDefinitions {
			value(v.DefaultValue, "$"+v.Variable, "default")
		}
		selections(op.SelectionSet)
	}
	for _, f := range doc.Fragments {
		selections(f.SelectionSet)
	}
	return index
}

// nameVariable makes a variable's coercion error (path ["variable", name, …]) say which
// variable in its message, as argument errors do, and in extensions.variable.
func nameVariable(e *gqlerror.Error) {
	if len(e.Path) < 2 || e.Path[0] != ast.PathName("variable") {
		return
	}
	name, ok := e.Path[1].(ast.PathName)
	if !ok {
		return
	}
	e.Message = fmt.Sprintf("variable $%s%s: %s", name, pathSuffix(e.Path[2:]), e.Message)
	e.Extensions["variable"] = string(name)
}
