package catalog

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/tongban/tongban/push/condition"
)

// Fact is a fact the catalog declares: what may be known about a person, who may tell it and
// who may use it (PIPL purpose limitation and minimum necessity). An event's attribute must be
// a declared fact its sender writes; a rule may read only the facts its department reads.
type Fact struct {
	Name        string
	Type        condition.FactType
	Description string
	// Sensitive marks sensitive personal information (health, finances, …) for operators and
	// auditors; access is governed by Readers either way.
	Sensitive bool
	// Writers are the machine client ids that may set the fact.
	Writers []string
	// Readers are the departments whose rules may read it.
	Readers []string

	line int
}

const factFields = "name, type, description, sensitive, writers, readers"

// factEntry is one fact as written; nodes, so that problems name their lines.
type factEntry struct {
	Name        yaml.Node `yaml:"name"`
	Type        yaml.Node `yaml:"type"`
	Description yaml.Node `yaml:"description"`
	Sensitive   yaml.Node `yaml:"sensitive"`
	Writers     yaml.Node `yaml:"writers"`
	Readers     yaml.Node `yaml:"readers"`
}

// parseFacts checks the facts list and keeps the good entries.
func (c *Catalog) parseFacts(seq []*yaml.Node) []Problem {
	var problems []Problem
	firstLine := map[string]int{}
	for _, n := range seq {
		if n.Kind != yaml.MappingNode {
			problems = append(problems, Problem{Line: n.Line, Message: "a fact must be a mapping of " + factFields})
			continue
		}
		var e factEntry
		if err := n.Decode(&e); err != nil {
			problems = append(problems, Problem{Line: n.Line, Message: yamlErrorText(err)})
			continue
		}
		f, ps := checkFact(&e, n.Line)
		problems = append(problems, ps...)
		if f.Name != "" && condition.FactName.MatchString(f.Name) {
			if line, dup := firstLine[f.Name]; dup {
				problems = append(problems, Problem{Line: e.Name.Line, Field: "name", Message: fmt.Sprintf("%q is already the name of the fact at line %d", f.Name, line)})
				continue
			}
			firstLine[f.Name] = e.Name.Line
		}
		if len(ps) == 0 {
			c.facts[f.Name] = f
			c.factList = append(c.factList, f)
		}
	}
	return problems
}

func checkFact(e *factEntry, line int) (Fact, []Problem) {
	ep := &entryProblems{line: line}
	bad := ep.bad
	text := func(n *yaml.Node, field string) string { return ep.text(n, field, "!!str") }
	list := func(n *yaml.Node, field string) []string {
		if n.Kind == 0 || n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return nil
		}
		if n.Kind != yaml.SequenceNode {
			bad(n, field, "must be a list of strings")
			return nil
		}
		var out []string
		for _, item := range n.Content {
			v := strings.TrimSpace(item.Value)
			if item.Kind != yaml.ScalarNode || item.Tag != "!!str" || v == "" {
				bad(item, field, "must be a list of non-empty strings")
				continue
			}
			if !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
		return out
	}
	f := Fact{
		Name: text(&e.Name, "name"), Description: text(&e.Description, "description"),
		Writers: list(&e.Writers, "writers"), Readers: list(&e.Readers, "readers"), line: line,
	}
	switch {
	case f.Name == "":
	case !condition.FactName.MatchString(f.Name):
		bad(&e.Name, "name", "%q must be an identifier: a letter or _, then letters, digits or _, at most 64", f.Name)
	case f.Name == condition.ResidenceAttribute:
		bad(&e.Name, "name", "residence is not a fact: it sets person.residence")
	}
	if t := text(&e.Type, "type"); t != "" {
		if !slices.Contains(condition.FactTypes(), condition.FactType(t)) {
			var names []string
			for _, ft := range condition.FactTypes() {
				names = append(names, string(ft))
			}
			bad(&e.Type, "type", "%q is not one of %s", t, strings.Join(names, " "))
		}
		f.Type = condition.FactType(t)
	}
	switch n := &e.Sensitive; {
	case n.Kind == 0:
		bad(n, "sensitive", "is required (true for health, finances, beliefs, biometrics and the like; false otherwise)")
	case n.Kind != yaml.ScalarNode || n.Tag != "!!bool":
		bad(n, "sensitive", "must be true or false")
	default:
		_ = n.Decode(&f.Sensitive)
	}
	return f, ep.list
}

// CheckWriters reports the facts whose writers are not machine clients of the configuration,
// as catalog problems with their lines: a misspelt writer would otherwise silently refuse every
// event of the platform that was meant.
func (c *Catalog) CheckWriters(source string, machineClients []string) error {
	if c == nil {
		return nil
	}
	var ps []Problem
	for _, f := range c.factList {
		for _, w := range f.Writers {
			if !slices.Contains(machineClients, w) {
				ps = append(ps, Problem{Line: f.line, Field: "writers", Message: fmt.Sprintf("fact %s: %q is not a machine client", f.Name, w)})
			}
		}
	}
	if len(ps) > 0 {
		return &LoadError{Source: source, Problems: ps}
	}
	return nil
}

// Facts lists the declared facts in the catalog's order.
func (c *Catalog) Facts() []Fact {
	if c == nil {
		return nil
	}
	return slices.Clone(c.factList)
}

// Fact finds a declared fact by name.
func (c *Catalog) Fact(name string) (Fact, bool) {
	if c == nil {
		return Fact{}, false
	}
	f, ok := c.facts[name]
	return f, ok
}

// ConditionFacts are the declarations the rule language needs: names and types.
func (c *Catalog) ConditionFacts() []condition.Fact {
	if c == nil {
		return nil
	}
	out := make([]condition.Fact, len(c.factList))
	for i, f := range c.factList {
		out[i] = condition.Fact{Name: f.Name, Type: f.Type}
	}
	return out
}

// ReadableBy is what CompileFor asks of a department's conditions: the facts they name must be
// readable by it.
func (c *Catalog) ReadableBy(department string) func([]condition.FactRead) []condition.Problem {
	return func(reads []condition.FactRead) []condition.Problem { return c.unreadable(department, reads) }
}

// unreadable is the problem of a condition reading facts its department may not read, one per
// fact, with its position; nil when every fact it reads is the department's to read.
func (c *Catalog) unreadable(department string, reads []condition.FactRead) []condition.Problem {
	var out []condition.Problem
	for _, r := range reads {
		f, ok := c.Fact(r.Name)
		if !ok || slices.Contains(f.Readers, department) {
			// A fact the catalog does not declare is the type checker's to report ("undefined
			// field", with its position): it is a typo, not a fact of another department.
			continue
		}
		out = append(out, condition.Problem{
			Line: r.Line, Column: r.Column,
			Message: fmt.Sprintf("fact %s is not readable by %s: the catalog lists the departments that may use it (purpose limitation)", r.Name, department),
		})
	}
	return out
}
