package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// envConfig names the configuration file when Load is given no path.
const envConfig = "TONGBAN_CONFIG"

// Load reads the configuration: the file at path (or at TONGBAN_CONFIG in environ when path is
// ""; with neither, Dev()), then the TONGBAN_* overrides in environ, then the *_file secrets,
// then per-element defaults and dev-mode secrets and URLs, then Validate. environ is os.Environ() in main
// and whatever a test likes elsewhere.
//
// The error, when not nil, is Problems: every problem found, one line each. The returned
// Config is as far as loading got; do not run with it when the error is not nil. When the file
// cannot be read, is not YAML, or was largely not decoded (not a mapping, a key set twice),
// loading stops there: checking the defaults left behind would only bury the real problem.
func Load(path string, environ []string) (*Config, error) {
	if path == "" {
		path = lookupEnv(environ, envConfig)
	}
	var c *Config
	var ps Problems
	if path == "" {
		c = Dev()
	} else {
		c = Defaults()
		c.Listen, c.MetricsListen = unsetListen, unsetListen // until dev is known: see defaultListen
		var fatal bool
		ps, fatal = decodeFile(path, c)
		if fatal {
			return c, ps
		}
	}
	ps = append(ps, applyEnv(c, environ)...)
	ps = append(ps, resolveSecretFiles(c)...)
	applyDefaults(c)
	if err := c.Validate(); err != nil {
		ps = append(ps, err.(Problems)...)
	}
	if len(ps) > 0 {
		return c, ps
	}
	return c, nil
}

// lookupEnv returns the first value of name, as os.Getenv would.
func lookupEnv(environ []string, name string) string {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// decodeFile decodes the YAML file at path over c. fatal means loading should stop here;
// problems with single keys (unknown, wrong type) leave the rest decoded and are not fatal.
func decodeFile(path string, c *Config) (ps Problems, fatal bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Problems{{Key: path, Message: "cannot read the configuration file: " + unwrapPathError(err).Error()}}, true
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err = decodeSafely(dec, c)
	var typeErr *yaml.TypeError
	switch {
	case errors.Is(err, io.EOF): // an empty file (or only comments) changes nothing
		return nil, false
	case errors.As(err, &typeErr):
		return typeProblems(path, data, typeErr.Errors)
	case err != nil:
		return Problems{yamlProblem(path, err.Error())}, true
	}
	var next yaml.Node
	if err := decodeSafely(dec, &next); !errors.Is(err, io.EOF) && !isEmptyDocument(&next) {
		return Problems{{Key: path, Message: "holds more than one YAML document; want one"}}, false
	}
	return nil, false
}

// decodeSafely turns a panic in the YAML decoder into an error: a configuration file is outside
// input, and start-up should report it, not crash on it.
func decodeSafely(dec *yaml.Decoder, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: cannot decode: %v", r)
		}
	}()
	return dec.Decode(v)
}

func isEmptyDocument(n *yaml.Node) bool {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	return n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

var (
	yamlLinePattern     = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	unknownKeyPattern   = regexp.MustCompile(`^field (.+) not found in type `)
	wrongTypePattern    = regexp.MustCompile("^cannot unmarshal !!(\\w+)(?: `(.*)`)? into (.+)$")
	duplicateKeyPattern = regexp.MustCompile(`^mapping key .* already defined at line (\d+)$`)
)

// yamlProblem places a YAML error at file:line when the message says which line.
func yamlProblem(path, msg string) Problem {
	m := yamlLinePattern.FindStringSubmatch(msg)
	if m == nil {
		return Problem{Key: path, Message: strings.TrimPrefix(msg, "yaml: ")}
	}
	return Problem{Key: path + ":" + m[1], Message: m[2]}
}

// typeProblems rewrites the decoder's per-key errors to name the key's full path
// (providers[0].isuer) with the file and line where it is written. fatal means whole parts
// of the file were not decoded: the document is not a mapping, or a mapping repeats a key
// (the decoder then skips that mapping entirely).
func typeProblems(path string, data []byte, errs []string) (ps Problems, fatal bool) {
	keys, isMapping := keyPositions(data)
	fatal = !isMapping
	for _, e := range errs {
		m := yamlLinePattern.FindStringSubmatch(e)
		if m == nil {
			ps = append(ps, Problem{Key: path, Message: e})
			continue
		}
		line, _ := strconv.Atoi(m[1])
		where := path + ":" + m[1]
		msg := m[2]
		var key string
		if u := unknownKeyPattern.FindStringSubmatch(msg); u != nil {
			key, msg = keys.findKey(line, u[1]), "no such configuration key"
		} else if w := wrongTypePattern.FindStringSubmatch(msg); w != nil {
			key = keys.findValue(line, w[1], strings.TrimSuffix(w[2], "..."))
			msg = fmt.Sprintf("want %s, got %s", describeType(w[3]), describeValue(w[1], w[2]))
		} else if d := duplicateKeyPattern.FindStringSubmatch(msg); d != nil {
			key, msg, fatal = keys.findKey(line, ""), "set twice; the first is at line "+d[1], true
		} else {
			key = keys.findKey(line, "")
		}
		if key != "" {
			ps = append(ps, Problem{Key: key, Message: msg + " (" + where + ")"})
		} else {
			ps = append(ps, Problem{Key: where, Message: msg})
		}
	}
	return ps, fatal
}

func describeType(goType string) string {
	switch {
	case goType == "int" || goType == "int64":
		return "an integer"
	case goType == "bool":
		return "true or false"
	case goType == "string":
		return "a single value"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map["), strings.HasPrefix(goType, "config."):
		return "a mapping of keys to values"
	}
	return goType
}

// describeValue names what the file holds. The decoder shortens scalars (to a few characters
// and "..."), which also keeps a misplaced secret out of the error.
func describeValue(tag, value string) string {
	switch {
	case value != "":
		return strconv.Quote(value)
	case tag == "seq":
		return "a list"
	case tag == "map":
		return "a mapping"
	}
	return "!!" + tag
}

// keyPosition is a key, or a value, in the file: where it starts and its path.
type keyPosition struct {
	line int
	key  string     // the key as written, for a key; "" for a value
	node *yaml.Node // the value, for a value
	path string
}

type keyIndex []keyPosition

// keyPositions lists the file's keys and values in document order. The decoder has already
// read the file once; this second, error-tolerant pass only serves error messages.
func keyPositions(data []byte) (keys keyIndex, isMapping bool) {
	var root yaml.Node
	func() {
		defer func() { _ = recover() }()
		_ = yaml.Unmarshal(data, &root)
	}()
	keys.walk(&root, "")
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	return keys, doc.Kind == yaml.MappingNode
}

func (ki *keyIndex) walk(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			*ki = append(*ki, keyPosition{line: c.Line, node: c, path: path})
			ki.walk(c, path)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			*ki = append(*ki, keyPosition{line: k.Line, key: k.Value, path: p}, keyPosition{line: v.Line, node: v, path: p})
			ki.walk(v, p)
		}
	case yaml.SequenceNode:
		for i, v := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			*ki = append(*ki, keyPosition{line: v.Line, node: v, path: p})
			ki.walk(v, p)
		}
	}
}

// findKey returns the path of the key called name on line, or of the first key on line when
// name is "".
func (ki keyIndex) findKey(line int, name string) string {
	for _, k := range ki {
		if k.node == nil && k.line == line && (name == "" || k.key == name) {
			return k.path
		}
	}
	return ""
}

// findValue returns the path of the first value on line with the tag (and, for a scalar, the
// start) the decoder complained about.
func (ki keyIndex) findValue(line int, tag, prefix string) string {
	for _, k := range ki {
		if k.node != nil && k.line == line && k.node.ShortTag() == "!!"+tag && strings.HasPrefix(k.node.Value, prefix) {
			return k.path
		}
	}
	return ""
}

// UnmarshalYAML parses Go duration syntax, reporting a bad value with its line like the
// decoder's own type errors (UnmarshalText cannot).
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf(
			"line %d: want a duration like 15s or 2m, got %q", n.Line, n.Value)}}
	}
	*d = Duration(v)
	return nil
}

// unwrapPathError drops the *fs.PathError wrapper, whose path the message already names.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
