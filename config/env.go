package config

import (
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

const envPrefix = "TONGBAN_"

var errNoSuchKey = errors.New("no such configuration key")

// applyEnv applies every TONGBAN_<PATH> variable in environ (but TONGBAN_CONFIG) to the key at
// that path. The path is the yaml names upper-cased and joined by "_", with list indexes as
// numbers: TONGBAN_PUSH_FCM_PROJECT_ID, TONGBAN_PROVIDERS_0_CLIENT_SECRET. An index equal to
// the list's length appends an element.
//
// Variables are applied in natural order (PROVIDERS_2 before PROVIDERS_10), so appending
// several elements works whatever order environ lists them in. A name given twice counts once,
// the first time, as with os.Getenv.
func applyEnv(c *Config, environ []string) Problems {
	type variable struct{ name, value string }
	var vars []variable
	seen := map[string]bool{}
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, envPrefix) || name == envConfig || seen[name] {
			continue
		}
		seen[name] = true
		vars = append(vars, variable{name, value})
	}
	slices.SortFunc(vars, func(a, b variable) int { return naturalCompare(a.name, b.name) })

	var ps Problems
	root := reflect.ValueOf(c).Elem()
	for _, v := range vars {
		if err := setPath(root, strings.TrimPrefix(v.name, envPrefix), v.value); err != nil {
			ps = append(ps, Problem{Key: v.name, Message: err.Error()})
		}
	}
	return ps
}

// setPath sets the key at path below v. In a struct it tries a field whose whole name is the
// path first, then fields whose name is a prefix followed by "_": so SECRET_SHA256 is the field
// secret_sha256, never secret followed by SHA256.
func setPath(v reflect.Value, path, value string) error {
	switch v.Kind() {
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			if name := envName(t.Field(i)); name != "" && name == path {
				return setValue(v.Field(i), value)
			}
		}
		for i := range t.NumField() {
			name := envName(t.Field(i))
			if name == "" || !strings.HasPrefix(path, name+"_") {
				continue
			}
			err := setPath(v.Field(i), path[len(name)+1:], value)
			if !errors.Is(err, errNoSuchKey) {
				return err
			}
		}
		return errNoSuchKey

	case reflect.Slice:
		index, rest, nested := strings.Cut(path, "_")
		i, err := strconv.Atoi(index)
		if err != nil || strings.TrimLeft(index, "0123456789") != "" {
			return errNoSuchKey
		}
		n := v.Len()
		if i > n {
			return fmt.Errorf("no element %d: the list has %d (index %d adds one)", i, n, n)
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		if i < n {
			elem = v.Index(i)
		}
		if nested {
			err = setPath(elem, rest, value)
		} else {
			err = setValue(elem, value)
		}
		if err == nil && i == n {
			v.Set(reflect.Append(v, elem))
		}
		return err
	}
	return errNoSuchKey
}

func envName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	return strings.ToUpper(name)
}

var durationType = reflect.TypeFor[Duration]()

// setValue parses value into v by v's type. Parse errors quote the value: no secret is ever
// anything but a string, and strings always parse.
func setValue(v reflect.Value, value string) error {
	if v.Type() == durationType {
		d, err := time.ParseDuration(strings.TrimSpace(value))
		if err != nil {
			return fmt.Errorf("want a duration like 15s or 2m, got %q", value)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(value)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(value))
		if err != nil {
			return fmt.Errorf("want true or false, got %q", value)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(value), 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("want an integer, got %q", value)
		}
		v.SetInt(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return fmt.Errorf("want a number, got %q", value)
		}
		v.SetFloat(f)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return errors.New("is a list of sections; set each element's keys by index, like TONGBAN_PROVIDERS_0_ID")
		}
		list, err := parseList(value)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(list))
	case reflect.Map:
		m := reflect.New(v.Type())
		if strings.TrimSpace(value) != "" {
			if err := yaml.Unmarshal([]byte(value), m.Interface()); err != nil {
				return fmt.Errorf(`want a mapping like {"urn:example:loa2": 2}, got %q`, value)
			}
		}
		v.Set(m.Elem())
	case reflect.Struct:
		return errors.New("is a section; set its keys instead, like TONGBAN_PUSH_DAILY_CAP")
	default:
		return errNoSuchKey
	}
	return nil
}

// parseList reads "a, b" or a YAML flow list "[a, b]"; "" is the empty list.
func parseList(value string) ([]string, error) {
	value = strings.TrimSpace(value)
	if strings.HasPrefix(value, "[") {
		var list []string
		if err := yaml.Unmarshal([]byte(value), &list); err != nil {
			return nil, fmt.Errorf("want a list like a,b or [a, b], got %q", value)
		}
		return list, nil
	}
	var list []string
	for item := range strings.SplitSeq(value, ",") {
		if item = strings.TrimSpace(item); item != "" {
			list = append(list, item)
		}
	}
	return list, nil
}

// naturalCompare orders strings with runs of digits compared as numbers.
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digitPrefix(a), digitPrefix(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if c := cmp.Or(cmp.Compare(len(na), len(nb)), strings.Compare(na, nb)); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

func digitPrefix(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}
