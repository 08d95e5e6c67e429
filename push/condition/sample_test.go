package condition

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sample(t testing.TB, s string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParseSample(t *testing.T) {
	p, ev, err := ParseSample(sample(t, `{
		"birthDate": "1966-11-27", "gender": "M",
		"hukou": {"code": "330402"}, "residence": {"city": "嘉兴", "district": "海宁"},
		"apps": ["zheliban", "suishenban"], "facts": {"children": 2, "income": 2999.5},
		"event": {"type": "birth.registered", "occurredAt": "2026-11-27T09:00:00+08:00",
		          "attributes": {"childBirthDate": "2026-11-26", "weight": 3}}
	}`), testNow)
	if err != nil {
		t.Fatal(err)
	}
	wantP := Person{
		Age:       60,
		BirthDate: time.Date(1966, 11, 27, 0, 0, 0, 0, shanghaiTZ),
		Gender:    "M",
		Hukou:     Region{"330402", "浙江", "嘉兴", "南湖区"},
		Residence: Region{"330481", "浙江", "嘉兴", "海宁市"},
		Apps:      []string{"zheliban", "suishenban"},
		Facts:     map[string]any{"children": int64(2), "income": 2999.5},
	}
	if !reflect.DeepEqual(p, wantP) {
		t.Errorf("person =\n%+v\nwant\n%+v", p, wantP)
	}
	wantE := Event{
		Type:       "birth.registered",
		OccurredAt: time.Date(2026, 11, 27, 9, 0, 0, 0, shanghaiTZ),
		Attributes: map[string]any{"childBirthDate": "2026-11-26", "weight": int64(3)},
	}
	if ev.Type != wantE.Type || !ev.OccurredAt.Equal(wantE.OccurredAt) || !reflect.DeepEqual(ev.Attributes, wantE.Attributes) {
		t.Errorf("event =\n%+v\nwant\n%+v", ev, wantE)
	}
	for _, rule := range []string{ruleSenior, ruleNewborn} {
		if got, err := compile(t, rule).Eval(&p, &ev, testNow); err != nil || !got {
			t.Errorf("%s on the sample = %v, %v; want true", rule, got, err)
		}
	}
}

func TestParseSampleDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want func(Person, Event) bool
	}{
		{"empty sample is an unknown person in a backfill", `{}`,
			func(p Person, e Event) bool { return reflect.DeepEqual(p, Person{}) && reflect.DeepEqual(e, Event{}) }},
		{"age given wins over birthDate", `{"birthDate": "1966-11-27", "age": 40}`,
			func(p Person, _ Event) bool { return p.Age == 40 && p.BirthDate.Year() == 1966 }},
		{"RFC 3339 birthDate", `{"birthDate": "1966-11-28T00:00:00+08:00"}`,
			func(p Person, _ Event) bool { return p.Age == 59 }},
		{"age as a float that is whole", `{"age": 60.0}`, func(p Person, _ Event) bool { return p.Age == 60 }},
		{"event time defaults to now", `{"event": {"type": "a.b"}}`,
			func(_ Person, e Event) bool { return e.OccurredAt.Equal(testNow) && e.Attributes == nil }},
		{"region by province name", `{"hukou": {"province": "上海市"}}`,
			func(p Person, _ Event) bool { return p.Hukou == Region{"310000", "上海", "上海", ""} }},
		{"region code outside the listed provinces", `{"hukou": {"code": "440305"}}`,
			func(p Person, _ Event) bool { return p.Hukou == Region{"440305", "广东", "", ""} }},
		{"empty region", `{"residence": {}}`, func(p Person, _ Event) bool { return p.Residence == Region{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, e, err := ParseSample(sample(t, tt.in), testNow)
			if err != nil || !tt.want(p, e) {
				t.Errorf("ParseSample(%s) = %+v, %+v, %v", tt.in, p, e, err)
			}
		})
	}
}

func TestParseSampleRefuses(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"unknown key", `{"salary": 1}`, "salary: unknown key"},
		{"birthDate not a string", `{"birthDate": 19661127}`, "birthDate: want a string, got a number"},
		{"birthDate malformed", `{"birthDate": "27/11/1966"}`, "birthDate: want YYYY-MM-DD or an RFC 3339 time"},
		{"birthDate impossible", `{"birthDate": "1966-02-30"}`, "birthDate: want YYYY-MM-DD"},
		{"age fractional", `{"age": 60.5}`, "age: want a whole number of years"},
		{"age negative", `{"age": -1}`, "age: want a whole number of years"},
		{"age a string", `{"age": "60"}`, "age: want a whole number of years"},
		{"gender lower case", `{"gender": "m"}`, `gender: want "M" or "F"`},
		{"gender not a string", `{"gender": 1}`, "gender: want a string"},
		{"hukou not an object", `{"hukou": "330402"}`, "hukou: want an object, got a string"},
		{"hukou unknown key", `{"hukou": {"street": "x"}}`, "hukou.street: unknown key"},
		{"hukou code and names", `{"hukou": {"code": "330402", "city": "嘉兴"}}`, "hukou: give either a code or names"},
		{"hukou code malformed", `{"hukou": {"code": "33040"}}`, `hukou.code: "33040" is not a division code`},
		{"hukou code not a string", `{"hukou": {"code": 330402}}`, "hukou.code: want a string"},
		{"residence unknown names", `{"residence": {"city": "深圳"}}`, `residence: the division table cannot place "深圳"`},
		{"residence city not placed", `{"residence": {"province": "广东", "city": "深圳"}}`, `cannot place "广东 深圳"`},
		{"residence district not placed", `{"residence": {"city": "杭州", "district": "江干区"}}`, `cannot place "杭州 江干区"`},
		{"apps not a list", `{"apps": "zheliban"}`, "apps: want a list of strings, got a string"},
		{"apps element", `{"apps": ["a", 2]}`, "apps[1]: want a string, got a number"},
		{"facts not an object", `{"facts": [1]}`, "facts: want an object, got a list"},
		{"event not an object", `{"event": "birth"}`, "event: want an object"},
		{"event unknown key", `{"event": {"type": "a.b", "when": "x"}}`, "event.when: unknown key"},
		{"event without type", `{"event": {"attributes": {}}}`, "event.type: required"},
		{"event time malformed", `{"event": {"type": "a.b", "occurredAt": "yesterday"}}`, "event.occurredAt: want an RFC 3339 time"},
		{"event attributes not an object", `{"event": {"type": "a.b", "attributes": [1]}}`, "event.attributes: want an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ParseSample(sample(t, tt.in), testNow)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "condition: sample: ") {
				t.Errorf("ParseSample(%s): err = %v, want it to contain %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestParseSampleUnsupportedValue(t *testing.T) {
	_, _, err := ParseSample(map[string]any{"facts": map[string]any{"x": struct{}{}}}, testNow)
	if err == nil || !strings.Contains(err.Error(), "facts.x: unsupported value") {
		t.Errorf("err = %v", err)
	}
}

func FuzzParseSample(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"birthDate": "1966-11-27", "hukou": {"code": "330402"}}`,
		`{"residence": {"province": "浙江", "city": "嘉兴", "district": "南湖区"}}`,
		`{"event": {"type": "a.b", "occurredAt": "2026-11-27T10:00:00Z", "attributes": {"n": 1.5}}}`,
		`{"age": 1e400}`, `{"apps": [null]}`, `{"facts": {"a": [{"b": []}]}}`,
	} {
		f.Add(s)
	}
	senior := compile(f, ruleSenior)
	f.Fuzz(func(t *testing.T, data string) {
		v, err := DecodeObject([]byte(data))
		if err != nil {
			return
		}
		p, ev, err := ParseSample(v, testNow)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "condition: sample: ") {
				t.Errorf("error without context: %v", err)
			}
			return
		}
		_, _ = senior.Eval(&p, &ev, testNow)
	})
}
