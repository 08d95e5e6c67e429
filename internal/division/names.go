package division

import "strings"

// provinceSuffixes are the endings a province-level name drops in its short form, longest first
// so that 广西壮族自治区 loses the whole 壮族自治区 and not just 自治区.
var provinceSuffixes = []string{"维吾尔自治区", "壮族自治区", "回族自治区", "特别行政区", "自治区", "省", "市"}

// shortProvince turns "浙江省" into "浙江" and "广西壮族自治区" into "广西"; a short name is
// returned as it is.
func shortProvince(name string) string {
	for _, s := range provinceSuffixes {
		if short, ok := strings.CutSuffix(name, s); ok && short != "" {
			return short
		}
	}
	return name
}

// shortCity turns "嘉兴市" into "嘉兴". Prefecture-level units that are not cities (地区, 盟)
// keep their suffix, which is part of how people name them.
func shortCity(name string) string {
	if short, ok := strings.CutSuffix(name, "市"); ok && short != "" {
		return short
	}
	return name
}

// districtStem is a district's name without its kind, so that "海宁" finds 海宁市. A name that
// would be left with a single character (郊区, 歙县) keeps its suffix: one character is too
// likely to be part of something else.
func districtStem(name string) string {
	for _, s := range []string{"新区", "区", "县", "市"} {
		if stem, ok := strings.CutSuffix(name, s); ok && len([]rune(stem)) >= 2 {
			return stem
		}
	}
	return name
}
