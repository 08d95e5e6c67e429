package condition

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeObject(t *testing.T) {
	got, err := DecodeObject([]byte(`{
		"count": 2, "ratio": 0.5, "whole": 2.0, "exp": 1e3, "big": 9007199254740993,
		"huge": 1e300, "neg": -7, "s": "嘉兴", "b": true, "n": null,
		"list": [1, 1.5, [2], {"k": 3}],
		"obj": {"inner": {"x": 10, "y": 0.25}}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"count": int64(2), "ratio": 0.5, "whole": int64(2), "exp": int64(1000),
		"big": int64(9007199254740993), "huge": 1e300, "neg": int64(-7),
		"s": "嘉兴", "b": true, "n": nil,
		"list": []any{int64(1), 1.5, []any{int64(2)}, map[string]any{"k": int64(3)}},
		"obj":  map[string]any{"inner": map[string]any{"x": int64(10), "y": 0.25}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DecodeObject =\n%#v\nwant\n%#v", got, want)
	}
}

func TestDecodeObjectRefuses(t *testing.T) {
	tests := []struct{ name, data, want string }{
		{"array", `[1, 2]`, "want an object, got a list"},
		{"string", `"x"`, "want an object, got a string"},
		{"number", `3`, "want an object, got a number"},
		{"null", `null`, "want an object, got null"},
		{"empty", ``, "decode JSON"},
		{"malformed", `{"a": }`, "decode JSON"},
		{"trailing data", `{"a": 1} {"b": 2}`, "data after the object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeObject([]byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "condition: ") {
				t.Errorf("DecodeObject(%q): err = %v, want it to contain %q", tt.data, err, tt.want)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	in := map[string]any{
		"n": json.Number("12"), "f": json.Number("1.25"), "g": float64(3), "h": 2.5,
		"i": 7, "i32": int32(-3), "u": uint(5), "u64": uint64(math.MaxUint64), "f32": float32(0.5),
		"nested": []any{json.Number("1"), map[string]any{"x": float64(4)}},
	}
	got, err := Normalize(in)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"n": int64(12), "f": 1.25, "g": int64(3), "h": 2.5,
		"i": int64(7), "i32": int64(-3), "u": int64(5), "u64": float64(math.MaxUint64), "f32": 0.5,
		"nested": []any{int64(1), map[string]any{"x": int64(4)}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Normalize =\n%#v\nwant\n%#v", got, want)
	}
	if in["n"] != json.Number("12") {
		t.Error("Normalize modified its input")
	}
}

func TestNormalizeRefuses(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"unsupported type", map[string]any{"a": []any{1, struct{}{}}}, "a[1]: unsupported value of type struct {}"},
		{"bad number", map[string]any{"x": json.Number("1x")}, `x: "1x" is not a number`},
		{"typed slice", []string{"a"}, "value: unsupported value of type []string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Normalize(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Normalize: err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestDecodedAttributesInRules checks that decoded values compare as authors expect.
func TestDecodedAttributesInRules(t *testing.T) {
	attrs, err := DecodeObject([]byte(`{"children": 2, "income": 2999.5, "childBirthDate": "2026-11-26"}`))
	if err != nil {
		t.Fatal(err)
	}
	c := compile(t, `event.attributes.children == 2 && event.attributes.income < 3000 && event.attributes.childBirthDate != ""`)
	if got, err := c.Eval(&Person{}, &Event{Type: "x.y", Attributes: attrs}, testNow); err != nil || !got {
		t.Errorf("Eval = %v, %v; want true", got, err)
	}
}
