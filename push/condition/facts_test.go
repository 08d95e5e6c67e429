package condition

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestReadsNameEveryFactOnce(t *testing.T) {
	c := compile(t, "has(person.facts.income) && person.facts.income < 3000.0 &&\n  event.attributes.children > 1 && has(event.attributes.residence) && person.facts.children > 0")
	want := []FactRead{{"income", 1, 4}, {"children", 2, 19}}
	if got := c.Reads(); !reflect.DeepEqual(got, want) {
		t.Errorf("Reads() = %v, want %v", got, want)
	}
	if got := compile(t, "person.age > 60").Reads(); len(got) != 0 {
		t.Errorf("a condition without facts reads %v", got)
	}
}

func TestNewEnvRefusesBadDeclarations(t *testing.T) {
	for _, tt := range []struct {
		name  string
		facts []Fact
		want  string
	}{
		{"name not an identifier", []Fact{{"monthly-income", FactInt}}, "not an identifier"},
		{"unknown type", []Fact{{"income", "money"}}, "unknown type"},
		{"declared twice", []Fact{{"income", FactInt}, {"income", FactDouble}}, "declared twice"},
		{"residence is reserved", []Fact{{"residence", FactString}}, "reserved"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewEnv(tt.facts...); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewEnv = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestValueTypesAFact(t *testing.T) {
	env := newEnv(t)
	ts := time.Date(2026, 9, 1, 8, 0, 0, 0, time.FixedZone("", 8*3600))
	for _, tt := range []struct {
		name, fact string
		in, want   any
	}{
		{"int", "children", int64(2), int64(2)},
		{"double from a whole number", "income", int64(3000), 3000.0},
		{"double", "income", 2999.5, 2999.5},
		{"string", "status", "低保", "低保"},
		{"bool", "veteran", true, true},
		{"timestamp", "enrolledAt", "2026-09-01T08:00:00+08:00", ts},
		{"list of strings", "benefits", []any{"a", "b"}, []string{"a", "b"}},
		{"null deletes", "children", nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := env.Value(tt.fact, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if gt, ok := got.(time.Time); ok {
				if !gt.Equal(tt.want.(time.Time)) {
					t.Errorf("Value = %v, want %v", got, tt.want)
				}
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Value = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestValueRefuses(t *testing.T) {
	env := newEnv(t)
	for _, tt := range []struct {
		name, fact string
		in         any
		want       string
	}{
		{"undeclared", "salary", int64(1), "undeclared fact"},
		{"string for an int", "children", "2", "want a whole number, got a string"},
		{"fraction for an int", "children", 2.5, "want a whole number"},
		{"number for a string", "status", int64(1), "want a string"},
		{"string for a bool", "veteran", "true", "want a boolean"},
		{"bad time", "enrolledAt", "2026-09-01", "RFC 3339"},
		{"list with a number", "benefits", []any{"a", int64(1)}, "item 1 is a number"},
		{"object for a list", "benefits", map[string]any{}, "want a list of strings"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := env.Value(tt.fact, tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Value = %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := env.Value("salary", int64(1)); !errors.Is(err, ErrUndeclared) {
		t.Errorf("undeclared: %v is not ErrUndeclared", err)
	}
}
