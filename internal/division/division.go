package division

import (
	_ "embed"
	"fmt"
	"strings"
	"sync"
)

// Region is a division by name, as rules see it. Province and City are short names ("浙江",
// "嘉兴"), because that is how people name them and how rules compare them; District is the full
// name ("南湖区", "海宁市"), because its suffix tells a district from a county-level city. In the
// municipalities (北京, 天津, 上海, 重庆) City is the municipality itself. Names the table does
// not know are empty.
type Region struct {
	Code     string
	Province string
	City     string
	District string
}

// Lookup returns the region of a six-digit code, named as precisely as the table knows it: a
// district code of a city the table lists but a district it does not still names the province
// and the city. Code is always the code given. ok is false only when the code is not six digits
// or its province does not exist.
func Lookup(code string) (Region, bool) {
	if !wellFormed(code) {
		return Region{}, false
	}
	t := loadTable()
	province, ok := t.names[code[:2]+"0000"]
	if !ok {
		return Region{}, false
	}
	r := Region{Code: code, Province: shortProvince(province)}
	switch {
	case isMunicipality(code):
		r.City = r.Province
	case code[2:4] != "00":
		if city, ok := t.names[code[:4]+"00"]; ok {
			r.City = shortCity(city)
		}
	}
	if r.City != "" && code[4:] != "00" {
		r.District = t.names[code]
	}
	return r, true
}

// Find resolves names to a region with the most specific code the names allow. Province and city
// may be full or short ("浙江省" or "浙江", "嘉兴市" or "嘉兴"); a district is its full name or
// the name without its 区, 县 or 市. Any of them may be empty.
//
// Each name narrows the one above it. A province the table does not know fails the whole lookup,
// since everything below it would be a guess. A city or district that is unknown within its
// scope, or ambiguous there (鼓楼区 is in both 南京 and 徐州), stops the narrowing: the result
// is the deepest level that did resolve. ok is false when nothing resolved.
func Find(province, city, district string) (Region, bool) {
	province = strings.TrimSpace(province)
	city = strings.TrimSpace(city)
	district = strings.TrimSpace(district)
	t := loadTable()

	found := "" // the most specific code resolved so far
	scope := "" // the code prefix names below must share
	if province != "" {
		code, ok := t.provinces[shortProvince(province)]
		if !ok {
			return Region{}, false
		}
		found, scope = code, code[:2]
	}
	if city != "" {
		if code, ok := unique(t.cities[shortCity(city)], scope); ok {
			found, scope = code, cityScope(code)
		}
	}
	if district != "" && (found != "" || province == "" && city == "") {
		codes := t.districts[district]
		if len(codes) == 0 {
			codes = t.districtStems[district]
		}
		if code, ok := unique(codes, scope); ok {
			found = code
		}
	}
	if found == "" {
		return Region{}, false
	}
	return Lookup(found)
}

// cityScope is the prefix a city's districts share: a municipality's districts share only the
// province digits, since its prefecture digits (01, formerly 02 for counties) carry no name.
func cityScope(code string) string {
	if isMunicipality(code) {
		return code[:2]
	}
	return code[:4]
}

// unique returns the one code with the prefix, if exactly one has it.
func unique(codes []string, prefix string) (string, bool) {
	match := ""
	for _, c := range codes {
		if !strings.HasPrefix(c, prefix) {
			continue
		}
		if match != "" {
			return "", false
		}
		match = c
	}
	return match, match != ""
}

func wellFormed(code string) bool {
	if len(code) != 6 {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

// isMunicipality reports whether the code is in 北京, 天津, 上海 or 重庆, whose districts sit
// directly under the province-level division.
func isMunicipality(code string) bool {
	switch code[:2] {
	case "11", "12", "31", "50":
		return true
	}
	return false
}

//go:embed data/divisions.tsv
var divisionsTSV string

// table indexes the embedded division list. It is built once and never changes.
type table struct {
	names         map[string]string   // code → full name
	provinces     map[string]string   // short province name → province code
	cities        map[string][]string // short city name → city codes; a municipality is its own city
	districts     map[string][]string // full district name → codes
	districtStems map[string][]string // district name without 区/县/市 → codes
}

var loadTable = sync.OnceValue(func() *table {
	t, err := parseTable(divisionsTSV)
	if err != nil {
		// The table is compiled in and checked by the tests; a bad one is a build defect.
		panic(err)
	}
	return t
})

func parseTable(src string) (*table, error) {
	t := &table{
		names:         map[string]string{},
		provinces:     map[string]string{},
		cities:        map[string][]string{},
		districts:     map[string][]string{},
		districtStems: map[string][]string{},
	}
	for i, line := range strings.Split(src, "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		code, name, ok := strings.Cut(line, "\t")
		if !ok || !wellFormed(code) || name == "" || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("division: line %d: want code<TAB>name, got %q", i+1, line)
		}
		if _, dup := t.names[code]; dup {
			return nil, fmt.Errorf("division: line %d: code %s listed twice", i+1, code)
		}
		t.names[code] = name
	}
	for code, name := range t.names {
		switch {
		case code[2:] == "0000":
			short := shortProvince(name)
			t.provinces[short] = code
			if isMunicipality(code) {
				t.cities[short] = append(t.cities[short], code)
			}
		case code[4:] == "00":
			if _, ok := t.names[code[:2]+"0000"]; !ok {
				return nil, fmt.Errorf("division: city %s %s has no province", code, name)
			}
			short := shortCity(name)
			t.cities[short] = append(t.cities[short], code)
		default:
			parent := code[:4] + "00"
			if isMunicipality(code) {
				parent = code[:2] + "0000"
			}
			if _, ok := t.names[parent]; !ok {
				return nil, fmt.Errorf("division: district %s %s has no city", code, name)
			}
			t.districts[name] = append(t.districts[name], code)
			if stem := districtStem(name); stem != name {
				t.districtStems[stem] = append(t.districtStems[stem], code)
			}
		}
	}
	return t, nil
}
