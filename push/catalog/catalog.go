package catalog

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Service is one service (事项) of the catalog: something a citizen does in one member app.
type Service struct {
	ID         string
	Name       string
	Department string
	// App is the member app (a provider or client id) whose deep link opens the service.
	App      string
	Category string
	// Link is the deep link in App; for another app's service it is opened through a switch.
	Link string
	// MinAssurance is the identity assurance level (1..4) a switch into the service needs.
	MinAssurance int
}

// Filter narrows Catalog.Search. Empty fields match everything.
type Filter struct {
	App      string
	Category string
	// Text is a case-insensitive substring of the name or the department.
	Text string
}

// Catalog is the loaded service catalog. It never changes after loading, so requests share it
// without locks. A nil *Catalog is an empty catalog.
type Catalog struct {
	byID map[string]Service
	// sorted holds every service by app, then id: the order Search keeps.
	sorted []Service
	// facts are the declared facts (facts.go), by name; factList in the file's order.
	facts    map[string]Fact
	factList []Fact
}

// categories are the 事项 categories a catalog may use, in the order people browse them.
var categories = [...]string{"教育", "就业", "社保", "医疗", "养老", "居住", "婚育", "出行", "民政", "税务", "公积金"}

// Categories lists the categories a service may have: 教育 就业 社保 医疗 养老 居住 婚育 出行
// 民政 税务 公积金.
func Categories() []string { return slices.Clone(categories[:]) }

// ChannelSlug names an Android notification channel per category, so people can silence one
// kind in the system settings too.
func ChannelSlug(c string) string {
	if i := slices.Index(categories[:], c); i >= 0 {
		return strconv.Itoa(i)
	}
	return "other"
}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,63}$`)

// Problem is one thing wrong with a catalog file.
type Problem struct {
	Line    int    // 1-based; 0 when the problem has no place (an empty document)
	Field   string // the service's key, e.g. "link"; "" for the file's structure
	Message string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// LoadError is a catalog that did not load: every problem found, not only the first.
type LoadError struct {
	Source   string
	Problems []Problem
}

func (e *LoadError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "catalog %s: %d problem(s)", e.Source, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  " + e.Source + ": " + p.String())
	}
	return b.String()
}

// Load reads and checks the catalog file at path; apps are the member app ids (providers
// and clients) a service may belong to.
func Load(path string, apps []string) (*Catalog, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	return Parse(data, path, apps)
}

//go:embed devdata/catalog.yaml
var devCatalog []byte

// Dev is the sample catalog of dev mode: services of the three simulated apps from
// departments across the Yangtze River Delta, with deep links into the dev apps.
func Dev(apps []string) (*Catalog, error) {
	return Parse(devCatalog, "devdata/catalog.yaml", apps)
}

// entry is one service as written. Its fields are nodes so that each problem can name its line;
// a missing key leaves a zero node.
type entry struct {
	ID           yaml.Node `yaml:"id"`
	Name         yaml.Node `yaml:"name"`
	Department   yaml.Node `yaml:"department"`
	App          yaml.Node `yaml:"app"`
	Category     yaml.Node `yaml:"category"`
	Link         yaml.Node `yaml:"link"`
	MinAssurance yaml.Node `yaml:"min_assurance"`
}

type catalogFile struct {
	Services []entry     `yaml:"services"`
	Facts    []factEntry `yaml:"facts"`
}

// Parse checks a catalog document (format in docs/catalog.md); source names it in errors.
// A bad catalog is a *LoadError listing every problem with its line.
func Parse(data []byte, source string, apps []string) (*Catalog, error) {
	c := &Catalog{byID: map[string]Service{}, facts: map[string]Fact{}}
	fail := func(ps []Problem) (*Catalog, error) { return nil, &LoadError{Source: source, Problems: ps} }

	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return fail([]Problem{{Line: yamlErrorLine(err), Message: yamlErrorText(err)}})
	}
	var problems []Problem
	// Unknown keys are mistakes (a misspelt min_assurance would otherwise silently mean none);
	// the strict decoder finds them, the node walk below finds everything else.
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var typed catalogFile
	if err := dec.Decode(&typed); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return fail([]Problem{{Line: yamlErrorLine(err), Message: yamlErrorText(err)}})
		}
		for _, msg := range te.Errors {
			if p, ok := unknownField(msg); ok {
				problems = append(problems, p)
			}
		}
	}

	seq, p := listNode(&root, "services")
	if p != nil {
		return fail(append(problems, *p))
	}
	factSeq, p := listNode(&root, "facts")
	if p != nil {
		return fail(append(problems, *p))
	}
	problems = append(problems, c.parseFacts(factSeq)...)
	allowed := map[string]bool{}
	for _, a := range apps {
		allowed[a] = true
	}
	firstLine := map[string]int{}
	for _, n := range seq {
		if n.Kind != yaml.MappingNode {
			problems = append(problems, Problem{Line: n.Line, Message: "a service must be a mapping of id, name, department, app, category, link, min_assurance"})
			continue
		}
		var e entry
		if err := n.Decode(&e); err != nil { // fields are nodes: only a malformed mapping fails
			problems = append(problems, Problem{Line: n.Line, Message: yamlErrorText(err)})
			continue
		}
		svc, ps := checkEntry(&e, n.Line, allowed)
		problems = append(problems, ps...)
		if svc.ID != "" && idPattern.MatchString(svc.ID) {
			if line, dup := firstLine[svc.ID]; dup {
				problems = append(problems, Problem{Line: e.ID.Line, Field: "id", Message: fmt.Sprintf("%q is already the id of the service at line %d", svc.ID, line)})
				continue
			}
			firstLine[svc.ID] = e.ID.Line
		}
		if len(ps) == 0 {
			c.byID[svc.ID] = svc
			c.sorted = append(c.sorted, svc)
		}
	}
	if len(problems) > 0 {
		slices.SortStableFunc(problems, func(a, b Problem) int { return a.Line - b.Line })
		return fail(problems)
	}
	slices.SortFunc(c.sorted, func(a, b Service) int {
		if a.App != b.App {
			return strings.Compare(a.App, b.App)
		}
		return strings.Compare(a.ID, b.ID)
	})
	return c, nil
}

// listNode finds a top-level list of a catalog document: services or facts. An empty
// document, or one without the list, has none.
func listNode(root *yaml.Node, key string) ([]*yaml.Node, *Problem) {
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil, nil
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return nil, &Problem{Line: doc.Line, Message: "the catalog must be a mapping with a services list (and a facts list)"}
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value != key {
			continue
		}
		v := doc.Content[i+1]
		switch {
		case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
			return nil, nil
		case v.Kind != yaml.SequenceNode:
			return nil, &Problem{Line: v.Line, Field: key, Message: "must be a list of " + key}
		}
		return v.Content, nil
	}
	return nil, nil
}

// entryProblems collects the problems of one catalog entry (a service or a fact), each at
// its node's line, or at the entry's for a key that is missing (a zero node).
type entryProblems struct {
	line int
	list []Problem
}

func (ep *entryProblems) bad(n *yaml.Node, field, format string, args ...any) {
	l := n.Line
	if l == 0 {
		l = ep.line
	}
	ep.list = append(ep.list, Problem{Line: l, Field: field, Message: fmt.Sprintf(format, args...)})
}

// text reads a required string field, reporting it missing or not a scalar of one of tags.
func (ep *entryProblems) text(n *yaml.Node, field string, tags ...string) string {
	switch {
	case n.Kind == 0:
		ep.bad(n, field, "is required")
	case n.Kind != yaml.ScalarNode || !slices.Contains(tags, n.Tag):
		ep.bad(n, field, "must be a string")
	case strings.TrimSpace(n.Value) == "":
		ep.bad(n, field, "is required")
	default:
		return strings.TrimSpace(n.Value)
	}
	return ""
}

// checkEntry validates one service; it returns the service as far as it could read it.
func checkEntry(e *entry, line int, apps map[string]bool) (Service, []Problem) {
	ep := &entryProblems{line: line}
	bad := ep.bad
	// An id or a name written as a number is still the text it reads as.
	text := func(n *yaml.Node, field string) string { return ep.text(n, field, "!!str", "!!int", "!!null") }
	s := Service{
		ID: text(&e.ID, "id"), Name: text(&e.Name, "name"), Department: text(&e.Department, "department"),
		App: text(&e.App, "app"), Category: text(&e.Category, "category"), Link: text(&e.Link, "link"),
	}
	if s.ID != "" && !idPattern.MatchString(s.ID) {
		bad(&e.ID, "id", "%q must be 2 to 64 lower-case letters, digits and hyphens, not starting with a hyphen", s.ID)
	}
	if s.App != "" && !apps[s.App] {
		bad(&e.App, "app", "%q is not a member app (a provider or client id)", s.App)
	}
	if s.Category != "" && !slices.Contains(categories[:], s.Category) {
		bad(&e.Category, "category", "%q is not one of %s", s.Category, strings.Join(categories[:], " "))
	}
	if s.Link != "" {
		if msg := checkLink(s.Link); msg != "" {
			bad(&e.Link, "link", "%s", msg)
		}
	}
	switch n := &e.MinAssurance; {
	case n.Kind == 0:
		bad(n, "min_assurance", "is required (1 to 4)")
	case n.Kind != yaml.ScalarNode || n.Tag != "!!int":
		bad(n, "min_assurance", "must be an integer from 1 to 4")
	default:
		if err := n.Decode(&s.MinAssurance); err != nil || s.MinAssurance < 1 || s.MinAssurance > 4 {
			bad(n, "min_assurance", "must be an integer from 1 to 4 (got %s)", n.Value)
		}
	}
	return s, ep.list
}

// checkLink says what is wrong with a deep link, or "": absolute https, or http on a loopback
// host (dev links), as for every other URL of the configuration.
func checkLink(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return fmt.Sprintf("%q must be an absolute https URL", raw)
	}
	switch u.Scheme {
	case "https":
		return ""
	case "http":
		if isLoopback(u.Hostname()) {
			return ""
		}
	}
	return fmt.Sprintf("%q must be https; http only on a loopback host", raw)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var (
	yamlLine       = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)
	yamlUnknownKey = regexp.MustCompile(`^line (\d+): field (.+) not found in type (\S+)`)
)

// unknownField turns the strict decoder's complaint about an unknown key into a problem.
func unknownField(msg string) (Problem, bool) {
	m := yamlUnknownKey.FindStringSubmatch(msg)
	if m == nil {
		return Problem{}, false
	}
	line := 0
	fmt.Sscan(m[1], &line)
	if strings.HasSuffix(m[3], "factEntry") {
		return Problem{Line: line, Field: m[2], Message: "is not a field of a fact (" + factFields + ")"}, true
	}
	return Problem{Line: line, Field: m[2], Message: "is not a field of a service (id, name, department, app, category, link, min_assurance)"}, true
}

func yamlErrorLine(err error) int {
	m := yamlLine.FindStringSubmatch(err.Error())
	if m == nil {
		return 0
	}
	line := 0
	fmt.Sscan(m[1], &line)
	return line
}

func yamlErrorText(err error) string {
	return yamlLine.ReplaceAllString(err.Error(), "")
}

// Len is the number of services.
func (c *Catalog) Len() int {
	if c == nil {
		return 0
	}
	return len(c.sorted)
}

// Service finds a service by id.
func (c *Catalog) Service(id string) (Service, bool) {
	if c == nil {
		return Service{}, false
	}
	s, ok := c.byID[id]
	return s, ok
}

// Search lists the services f matches, by app and then id, the same order every time so that
// pages of it can continue after an id.
func (c *Catalog) Search(f Filter) []Service {
	if c == nil {
		return nil
	}
	text := strings.ToLower(strings.TrimSpace(f.Text))
	var out []Service
	for _, s := range c.sorted {
		if f.App != "" && s.App != f.App || f.Category != "" && s.Category != f.Category {
			continue
		}
		if text != "" && !strings.Contains(strings.ToLower(s.Name), text) && !strings.Contains(strings.ToLower(s.Department), text) {
			continue
		}
		out = append(out, s)
	}
	return out
}
