package push

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tongban/tongban/internal/division"
	"github.com/tongban/tongban/internal/idnumber"
	"github.com/tongban/tongban/push/condition"
)

// checkEvent checks what an event says on its own; the code is "" when it passes.
func (e *Engine) checkEvent(source string, ev Event, now time.Time) (*pending, string, string) {
	p := &pending{ev: ev}
	switch {
	case ev.ID == "" || len(ev.ID) > maxEventIDLen:
		return nil, RejectInvalidID, fmt.Sprintf("id must be 1 to %d bytes", maxEventIDLen)
	case len(ev.Type) > maxEventType || !typePattern.MatchString(ev.Type):
		return nil, RejectInvalidType, "type must be dotted lower-case words, such as birth.registered"
	case ev.OccurredAt.IsZero():
		return nil, RejectMissingTime, "occurredAt is required"
	case ev.OccurredAt.After(now.Add(maxFutureSkew)):
		return nil, RejectFuture, "occurredAt is more than 5 minutes in the future"
	}
	switch {
	case ev.IDNumber != "":
		n, err := idnumber.Parse(ev.IDNumber)
		if err != nil {
			// idnumber's errors never hold the number.
			return nil, RejectInvalidIDNumber, "idNumber: " + err.Error()
		}
		p.num = n
		if (ev.App == "") != (ev.Subject == "") {
			return nil, RejectMissingPerson, "app and subject go together"
		}
	case ev.App == "" && ev.Subject == "":
		return nil, RejectMissingPerson, "name the person by idNumber or by app and subject"
	case ev.App == "" || ev.Subject == "":
		return nil, RejectMissingPerson, "app and subject go together"
	}
	if ev.App != "" && !e.apps[ev.App] {
		return nil, RejectUnknownApp, fmt.Sprintf("app %q is not a member app", ev.App)
	}
	fields, attrs, code, msg := e.checkAttributes(source, ev.Attributes)
	if code != "" {
		return nil, code, msg
	}
	p.ev.Attributes, p.fields = attrs, fields
	return p, "", ""
}

// checkAttributes checks an event's attributes and turns them into the writes to the facts:
// each attribute's JSON, "" for null (a deletion); residence becomes person.residence. Every
// other attribute must be a fact the catalog declares, that source may write, of its declared
// type. attrs are the attributes as rules see them in event.attributes, typed.
func (e *Engine) checkAttributes(source string, v any) (fields []any, attrs map[string]any, code, msg string) {
	if v == nil {
		return nil, map[string]any{}, "", ""
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, nil, RejectInvalidAttributes, "attributes are not JSON"
	}
	if len(raw) > maxAttrBytes {
		return nil, nil, RejectTooLarge, fmt.Sprintf("attributes are %d bytes of JSON; at most %d", len(raw), maxAttrBytes)
	}
	obj, err := condition.DecodeObject(raw)
	if err != nil {
		return nil, nil, RejectInvalidAttributes, "attributes must be a JSON object"
	}
	if len(obj) > maxAttrKeys {
		return nil, nil, RejectInvalidAttributes, fmt.Sprintf("at most %d attributes (got %d)", maxAttrKeys, len(obj))
	}
	names := make([]string, 0, len(obj))
	for k := range obj {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if !attrName.MatchString(k) {
			return nil, nil, RejectInvalidAttributes, fmt.Sprintf("attribute name %q must be a letter or _ then letters, digits or _, at most 64", k)
		}
		val := obj[k]
		if k == "residence" {
			if val == nil {
				fields = append(fields, residenceField, "")
				continue
			}
			r, err := residenceOf(val)
			if err != nil {
				return nil, nil, RejectInvalidResidence, err.Error()
			}
			fields = append(fields, residenceField, r.Code)
			continue
		}
		f, ok := e.catalog.Fact(k)
		switch {
		case !ok:
			return nil, nil, RejectUndeclaredFact, fmt.Sprintf("attribute %s is not a fact the catalog declares", k)
		case !slices.Contains(f.Writers, source):
			return nil, nil, RejectFactNotWritable, fmt.Sprintf("fact %s may not be written by %s", k, source)
		}
		if val == nil {
			fields = append(fields, k, "")
			continue
		}
		typed, err := e.env.Value(k, val)
		if err != nil {
			return nil, nil, RejectInvalidAttributes, fmt.Sprintf("fact %s is %s: %s", k, f.Type, strings.TrimPrefix(err.Error(), "condition: "))
		}
		obj[k] = typed
		blob, err := json.Marshal(typed)
		if err != nil {
			return nil, nil, RejectInvalidAttributes, fmt.Sprintf("attribute %s is not JSON", k)
		}
		fields = append(fields, k, string(blob))
	}
	return fields, obj, "", ""
}

// residenceOf reads a residence attribute: {"code": "330402"} or names
// ({"province", "city", "district"}).
func residenceOf(v any) (condition.Region, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return condition.Region{}, errors.New(`residence must be an object: {"code": "330402"} or {"province", "city", "district"}`)
	}
	str := func(k string) (string, error) {
		x, ok := m[k]
		if !ok || x == nil {
			return "", nil
		}
		s, ok := x.(string)
		if !ok {
			return "", fmt.Errorf("residence.%s must be a string", k)
		}
		return s, nil
	}
	for k := range m {
		if k != "code" && k != "province" && k != "city" && k != "district" {
			return condition.Region{}, fmt.Errorf("residence has an unknown key %q", k)
		}
	}
	code, err := str("code")
	if err != nil {
		return condition.Region{}, err
	}
	if code != "" {
		r, ok := division.Lookup(code)
		if !ok {
			return condition.Region{}, fmt.Errorf("residence.code %q is not a division code", code)
		}
		return condition.Region(r), nil
	}
	var names [3]string
	for i, k := range []string{"province", "city", "district"} {
		if names[i], err = str(k); err != nil {
			return condition.Region{}, err
		}
	}
	r, ok := division.Find(names[0], names[1], names[2])
	if !ok {
		return condition.Region{}, errors.New("residence names no known division")
	}
	return condition.Region(r), nil
}
