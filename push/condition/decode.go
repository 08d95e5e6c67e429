package condition

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// DecodeObject decodes a JSON object into the values CEL works with: integral numbers become
// int64 and other numbers float64, at any depth. CEL's int and double are distinct types and
// encoding/json would make every number a float64, while rule authors write
// `event.attributes.children == 2` and mean an int; keeping integers integers also keeps values
// beyond 2^53 exact. This is how event attributes and preview samples enter the package.
func DecodeObject(data []byte) (map[string]any, error) {
	v, err := decode(data, "object")
	if err != nil {
		return nil, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("condition: decode JSON: want an object, got %s", kindOf(v))
	}
	return obj, nil
}

// DecodeValue decodes any JSON value as DecodeObject does an object: how a stored fact comes
// back into a profile.
func DecodeValue(data []byte) (any, error) { return decode(data, "value") }

func decode(data []byte, what string) (any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("condition: decode JSON: %w", err)
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("condition: decode JSON: data after the %s", what)
	}
	n, err := normalize(v, "")
	if err != nil {
		return nil, fmt.Errorf("condition: decode JSON: %w", err)
	}
	return n, nil
}

// Normalize converts a value decoded elsewhere (gqlgen's JSON scalar, encoding/json with or
// without UseNumber, Go literals) to what DecodeObject produces: nil, bool, string, int64,
// float64, []any and map[string]any. The input is not modified.
func Normalize(v any) (any, error) {
	n, err := normalize(v, "")
	if err != nil {
		return nil, fmt.Errorf("condition: normalize: %w", err)
	}
	return n, nil
}

func normalize(v any, path string) (any, error) {
	switch v := v.(type) {
	case nil, bool, string:
		return v, nil
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return i, nil
		}
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a number", pathOr(path), string(v))
		}
		return fromFloat(f), nil
	case float64:
		return fromFloat(v), nil
	case float32:
		return fromFloat(float64(v)), nil
	case int:
		return int64(v), nil
	case int8:
		return int64(v), nil
	case int16:
		return int64(v), nil
	case int32:
		return int64(v), nil
	case int64:
		return v, nil
	case uint:
		return fromUint(uint64(v)), nil
	case uint8:
		return int64(v), nil
	case uint16:
		return int64(v), nil
	case uint32:
		return int64(v), nil
	case uint64:
		return fromUint(v), nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			n, err := normalize(e, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			n, err := normalize(e, joinPath(path, k))
			if err != nil {
				return nil, err
			}
			out[k] = n
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s: unsupported value of type %T", pathOr(path), v)
}

// fromFloat makes an integral float an int64, so that 2, 2.0 and 2e0 are the same value whichever
// decoder read them. Integral floats beyond int64 stay floats.
func fromFloat(f float64) any {
	if f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64 {
		return int64(f)
	}
	return f
}

func fromUint(u uint64) any {
	if u <= math.MaxInt64 {
		return int64(u)
	}
	return float64(u)
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func pathOr(path string) string {
	if path == "" {
		return "value"
	}
	return path
}

// kindOf names a value's JSON kind for error messages.
func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number, int64, float64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
