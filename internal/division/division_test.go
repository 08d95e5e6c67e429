package division

import (
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	tests := []struct {
		name string
		code string
		want Region
	}{
		{"district", "330402", Region{"330402", "浙江", "嘉兴", "南湖区"}},
		{"county", "330421", Region{"330421", "浙江", "嘉兴", "嘉善县"}},
		{"county-level city", "330481", Region{"330481", "浙江", "嘉兴", "海宁市"}},
		{"merged hangzhou district", "330105", Region{"330105", "浙江", "杭州", "拱墅区"}},
		{"municipality district", "310115", Region{"310115", "上海", "上海", "浦东新区"}},
		{"municipality", "310000", Region{"310000", "上海", "上海", ""}},
		{"municipality prefecture row", "310100", Region{"310100", "上海", "上海", ""}},
		{"jiangsu district", "320508", Region{"320508", "江苏", "苏州", "姑苏区"}},
		{"anhui district", "340104", Region{"340104", "安徽", "合肥", "蜀山区"}},
		{"city", "330400", Region{"330400", "浙江", "嘉兴", ""}},
		{"province", "330000", Region{"330000", "浙江", "", ""}},
		{"autonomous region", "450000", Region{"450000", "广西", "", ""}},
		{"inner mongolia", "150000", Region{"150000", "内蒙古", "", ""}},
		{"abolished district keeps its city", "330103", Region{"330103", "浙江", "杭州", ""}},
		{"unlisted city keeps its province", "440305", Region{"440305", "广东", "", ""}},
		{"unknown city in a listed province", "339901", Region{"339901", "浙江", "", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Lookup(tt.code)
			if !ok || got != tt.want {
				t.Errorf("Lookup(%q) = %+v, %v; want %+v, true", tt.code, got, ok, tt.want)
			}
		})
	}
}

func TestLookupRefuses(t *testing.T) {
	tests := []struct{ name, code string }{
		{"empty", ""},
		{"too short", "33040"},
		{"too long", "3304021"},
		{"letters", "33040a"},
		{"full-width digits", "３３０４０２"},
		{"sign", "-30402"},
		{"space", " 30402"},
		{"unknown province", "990000"},
		{"zero province", "000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, ok := Lookup(tt.code); ok {
				t.Errorf("Lookup(%q) = %+v, true; want false", tt.code, got)
			}
		})
	}
}

func TestFind(t *testing.T) {
	tests := []struct {
		name                     string
		province, city, district string
		want                     Region
	}{
		{"short names", "浙江", "嘉兴", "南湖区", Region{"330402", "浙江", "嘉兴", "南湖区"}},
		{"full names", "浙江省", "嘉兴市", "海宁市", Region{"330481", "浙江", "嘉兴", "海宁市"}},
		{"district stem", "浙江", "嘉兴", "海宁", Region{"330481", "浙江", "嘉兴", "海宁市"}},
		{"city only", "", "嘉兴", "", Region{"330400", "浙江", "嘉兴", ""}},
		{"full city only", "", "杭州市", "", Region{"330100", "浙江", "杭州", ""}},
		{"province only", "江苏省", "", "", Region{"320000", "江苏", "", ""}},
		{"autonomous region full name", "广西壮族自治区", "", "", Region{"450000", "广西", "", ""}},
		{"municipality as province", "上海市", "", "", Region{"310000", "上海", "上海", ""}},
		{"municipality as city", "", "上海", "", Region{"310000", "上海", "上海", ""}},
		{"municipality district", "上海", "上海", "青浦区", Region{"310118", "上海", "上海", "青浦区"}},
		{"municipality district without city", "上海", "", "徐汇区", Region{"310104", "上海", "上海", "徐汇区"}},
		{"new area stem", "", "上海", "浦东", Region{"310115", "上海", "上海", "浦东新区"}},
		{"district alone when unique", "", "", "秀洲区", Region{"330411", "浙江", "嘉兴", "秀洲区"}},
		{"district without city", "江苏", "", "吴江区", Region{"320509", "江苏", "苏州", "吴江区"}},
		{"ambiguous district falls back to the province", "江苏", "", "鼓楼区", Region{"320000", "江苏", "", ""}},
		{"district disambiguated by city", "江苏", "徐州", "鼓楼区", Region{"320302", "江苏", "徐州", "鼓楼区"}},
		{"putuo in zhoushan", "", "舟山", "普陀区", Region{"330903", "浙江", "舟山", "普陀区"}},
		{"putuo in shanghai", "", "上海", "普陀区", Region{"310107", "上海", "上海", "普陀区"}},
		{"unknown district falls back to the city", "浙江", "杭州", "江干区", Region{"330100", "浙江", "杭州", ""}},
		{"city of another province falls back to the province", "江苏", "嘉兴", "", Region{"320000", "江苏", "", ""}},
		{"unlisted city falls back to the province", "广东", "深圳", "", Region{"440000", "广东", "", ""}},
		{"surrounding space", " 浙江 ", " 嘉兴 ", " 南湖区 ", Region{"330402", "浙江", "嘉兴", "南湖区"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Find(tt.province, tt.city, tt.district)
			if !ok || got != tt.want {
				t.Errorf("Find(%q, %q, %q) = %+v, %v; want %+v, true", tt.province, tt.city, tt.district, got, ok, tt.want)
			}
		})
	}
}

func TestFindRefuses(t *testing.T) {
	tests := []struct {
		name                     string
		province, city, district string
	}{
		{"nothing given", "", "", ""},
		{"unknown province", "火星", "嘉兴", "南湖区"},
		{"unknown city alone", "", "深圳", ""},
		{"unknown district alone", "", "", "不存在区"},
		{"ambiguous district alone", "", "", "鼓楼区"},
		{"district under an unresolved city", "", "深圳", "南山区"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, ok := Find(tt.province, tt.city, tt.district); ok {
				t.Errorf("Find(%q, %q, %q) = %+v, true; want false", tt.province, tt.city, tt.district, got)
			}
		})
	}
}

// TestRequiredDivisions pins the codes other packages and the dev fixtures rely on.
func TestRequiredDivisions(t *testing.T) {
	want := map[string]string{
		"330106": "西湖区", "330402": "南湖区", "330411": "秀洲区", "330421": "嘉善县",
		"330424": "海盐县", "330481": "海宁市", "330482": "平湖市", "330483": "桐乡市",
		"330102": "上城区", "330105": "拱墅区", "330108": "滨江区", "310101": "黄浦区",
		"310104": "徐汇区", "310115": "浦东新区", "310118": "青浦区", "320505": "虎丘区",
		"320506": "吴中区", "320508": "姑苏区", "320509": "吴江区", "320102": "玄武区",
		"340104": "蜀山区", "340102": "瑶海区",
	}
	for code, name := range want {
		if r, ok := Lookup(code); !ok || r.District != name {
			t.Errorf("Lookup(%s) = %+v, %v; want district %s", code, r, ok, name)
		}
	}
}

// TestTableCoverage checks the embedded table against counts published with GB/T 2260, so that a
// lost or duplicated line shows up.
func TestTableCoverage(t *testing.T) {
	tab := loadTable()
	var provinces int
	cities := map[string]int{}
	districts := map[string]int{}
	for code := range tab.names {
		switch {
		case code[2:] == "0000":
			provinces++
		case code[4:] == "00":
			cities[code[:2]]++
		default:
			districts[code[:2]]++
		}
	}
	if provinces != 34 {
		t.Errorf("%d province-level divisions, want 34", provinces)
	}
	for prefix, want := range map[string][2]int{
		"31": {0, 16}, "32": {13, 95}, "33": {11, 90}, "34": {16, 104},
	} {
		if cities[prefix] != want[0] || districts[prefix] != want[1] {
			t.Errorf("province %s0000: %d cities and %d districts, want %d and %d",
				prefix, cities[prefix], districts[prefix], want[0], want[1])
		}
	}
}

func TestParseTableRefuses(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"no tab", "330000 浙江省\n", "want code<TAB>name"},
		{"short code", "33000\t浙江省\n", "want code<TAB>name"},
		{"empty name", "330000\t\n", "want code<TAB>name"},
		{"duplicate", "330000\t浙江省\n330000\t浙江省\n", "listed twice"},
		{"orphan city", "330400\t嘉兴市\n", "has no province"},
		{"orphan district", "330000\t浙江省\n330402\t南湖区\n", "has no city"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseTable(tt.src)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parseTable: err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func FuzzLookup(f *testing.F) {
	for _, s := range []string{"330402", "310115", "", "33040", "990000", "33040\x00", "３３０４０２"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, code string) {
		r, ok := Lookup(code)
		if !ok {
			return
		}
		if r.Code != code || r.Province == "" {
			t.Errorf("Lookup(%q) = %+v, true: want the code back and a province", code, r)
		}
		if r.District != "" && r.City == "" {
			t.Errorf("Lookup(%q) = %+v: a district without a city", code, r)
		}
	})
}

func FuzzFind(f *testing.F) {
	f.Add("浙江", "嘉兴", "南湖区")
	f.Add("上海市", "", "浦东")
	f.Add("", "", "鼓楼区")
	f.Add("广西壮族自治区", "南宁市", "")
	f.Add("省", "市", "区")
	f.Fuzz(func(t *testing.T, province, city, district string) {
		r, ok := Find(province, city, district)
		if !ok {
			return
		}
		back, ok := Lookup(r.Code)
		if !ok || back != r {
			t.Errorf("Find(%q, %q, %q) = %+v, but Lookup of its code gives %+v, %v", province, city, district, r, back, ok)
		}
	})
}
