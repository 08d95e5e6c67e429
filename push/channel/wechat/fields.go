package wechat

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tongban/tongban/push/channel"
)

// A template key is a type name and a number: "thing1", "time2", "character_string12". The
// type decides what WeChat accepts in the value (订阅消息参数值内容限制说明 of
// subscribeMessage.send); a value outside it is refused with 47003 and the message is lost, so
// rendering fits every value to its type before sending.
//
//	thing             ≤ 20 characters, any mix                    cut to 19 + "…"
//	number            ≤ 32 digits, may have a decimal part        literal only
//	letter            ≤ 32 letters                                literal only
//	symbol            ≤ 5 symbols                                 literal only
//	character_string  ≤ 32 digits, letters or symbols             non-ASCII dropped, cut to 32
//	time              24-hour time, a date may precede it         "2006年1月2日 15:04"
//	date              a date, a 24-hour time may follow it        "2006年1月2日"
//	amount            a currency sign + ≤ 10 digits, "元" may end  literal only
//	phone_number      ≤ 17 digits and symbols                     literal only
//	car_number        ≤ 8, first and last may be Chinese          literal only
//	name              ≤ 10 Chinese, or ≤ 20 letters or symbols    cut to 10 (20 when no Chinese)
//	phrase            ≤ 5 Chinese characters                      non-Chinese dropped, cut to 5
//	enum              one of the template's values                literal only
//
// "Characters" are Unicode code points (runes): WeChat counts 一 and a alike.

// fieldType is one type of template key.
type fieldType struct {
	name string
	// sources lists the note fields a key of this type may show; literals ("text:…") are
	// always allowed and checked by fits when the options are read.
	sources []string
	render  func(string) string
	fits    func(string) bool
}

// The sources a template field can show.
const (
	srcTitle    = "title"
	srcService  = "service"
	srcBody     = "body"
	srcDate     = "date"
	srcTime     = "time"
	srcCategory = "category"
	srcText     = "text:"
)

var allTexts = []string{srcTitle, srcService, srcBody, srcCategory, srcDate, srcTime}

var fieldTypes = map[string]fieldType{
	"thing":            {sources: allTexts, render: renderThing, fits: fitsThing},
	"number":           {fits: matches(`^[0-9]{1,32}(\.[0-9]+)?$`, 33)},
	"letter":           {fits: matches(`^[A-Za-z]{1,32}$`, 32)},
	"symbol":           {fits: fitsSymbol},
	"character_string": {sources: []string{srcCategory}, render: renderCharString, fits: fitsCharString},
	"time":             {sources: []string{srcDate, srcTime}, fits: fitsTime},
	"date":             {sources: []string{srcDate, srcTime}, fits: fitsDate},
	"amount":           {fits: matches(`^[¥￥$€£]?[0-9]{1,10}(\.[0-9]{1,2})?元?$`, 16)},
	"phone_number":     {fits: matches(`^[0-9+\-() ]{1,17}$`, 17)},
	"car_number":       {fits: fitsCarNumber},
	"name":             {sources: []string{srcService, srcTitle, srcCategory}, render: renderName, fits: fitsName},
	"phrase":           {sources: []string{srcService, srcTitle, srcCategory}, render: renderPhrase, fits: fitsPhrase},
	"enum":             {fits: func(v string) bool { return v != "" && utf8.RuneCountInString(v) <= 20 && !hasControl(v) }},
}

// typeNames lists the known types for error messages.
func typeNames() string {
	return "thing, number, letter, symbol, character_string, time, date, amount, phone_number, car_number, name, phrase, enum"
}

// keyType splits a template key into its type: "character_string12" → character_string. The
// number is required: WeChat's keys always have one.
func keyType(key string) (fieldType, string, bool) {
	name := strings.TrimRight(key, "0123456789")
	if name == key || name == "" {
		return fieldType{}, name, false
	}
	t, ok := fieldTypes[name]
	t.name = name
	return t, name, ok
}

// field is one configured key of a template, checked by New.
type field struct {
	key     string
	typ     fieldType
	source  string // one of the src constants, or "" for a literal
	literal string
}

// parseField checks one Fields entry: the key's type is known and the source is one it can
// show. The error names the key; the caller adds the app and the category.
func parseField(key, source string) (field, error) {
	typ, name, ok := keyType(key)
	if !ok {
		if name == key || name == "" {
			return field{}, fmt.Errorf("key %q: a key is a type and a number, such as thing1", key)
		}
		return field{}, fmt.Errorf("key %q: unknown type %q (known: %s)", key, name, typeNames())
	}
	f := field{key: key, typ: typ}
	if lit, ok := strings.CutPrefix(source, srcText); ok {
		if !typ.fits(lit) {
			return field{}, fmt.Errorf("key %q: literal %q is not a valid %s value", key, lit, name)
		}
		f.literal = lit
		return f, nil
	}
	switch source {
	case srcTitle, srcService, srcBody, srcDate, srcTime, srcCategory:
	default:
		return field{}, fmt.Errorf("key %q: unknown source %q (known: title, service, body, date, time, category, text:…)", key, source)
	}
	for _, s := range typ.sources {
		if s == source {
			f.source = source
			return f, nil
		}
	}
	return field{}, fmt.Errorf("key %q: a %s key cannot show %q (it can show %s, or a literal text:…)", key, name, source, orNothing(typ.sources))
}

func orNothing(s []string) string {
	if len(s) == 0 {
		return "nothing but a literal"
	}
	return strings.Join(s, ", ")
}

// shanghai is China Standard Time, the default zone of rendered dates (people in China read
// them) and always the zone of WeChat's quota day. A fixed zone keeps it independent of the
// host's tzdata (China has had no DST since 1991).
var shanghai = time.FixedZone("Asia/Shanghai", 8*3600)

// value renders f for note: the source's text fitted to the key's type. ok is false when
// nothing valid is left (a phrase from a title without Chinese characters): WeChat would refuse
// the message with 47003, so it is not sent.
func (f field) value(n channel.Note, loc *time.Location) (string, bool) {
	if f.source == "" {
		return f.literal, true
	}
	var v string
	switch f.source {
	case srcTitle:
		v = n.Title
	case srcService:
		v = n.ServiceName
		if v == "" {
			v = n.Service
		}
	case srcBody:
		v = n.Body
	case srcCategory:
		v = n.Category
	case srcDate:
		v = formatDate(n.Created.In(loc))
	case srcTime:
		v = formatTime(n.Created.In(loc))
	}
	if f.typ.render != nil {
		v = f.typ.render(v)
	}
	return v, f.typ.fits(v)
}

// formatDate is WeChat's own example format for date keys: 2019年10月1日, in t's zone.
func formatDate(t time.Time) string {
	return strconv.Itoa(t.Year()) + "年" + strconv.Itoa(int(t.Month())) + "月" + strconv.Itoa(t.Day()) + "日"
}

// formatTime is the date and a 24-hour time, which both time and date keys accept.
func formatTime(t time.Time) string {
	return formatDate(t) + " " + t.Format("15:04")
}

// clean turns control characters (newlines, tabs) into spaces, which WeChat refuses in every
// type, folds runs of spaces into one, and trims. Invalid UTF-8 becomes U+FFFD.
func clean(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s { // invalid UTF-8 arrives as U+FFFD and is written as such
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

// cut keeps at most n runes of s; when it had to cut and ellipsis is set, the last kept rune
// is "…", so the reader sees that something is missing. Cutting is on rune boundaries only.
func cut(s string, n int, ellipsis bool) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	keep := n
	if ellipsis {
		keep = n - 1
	}
	i := 0
	for k := range s {
		if keep == 0 {
			i = k
			break
		}
		keep--
	}
	s = strings.TrimRight(s[:i], " ")
	if ellipsis {
		s += "…"
	}
	return s
}

const thingMax = 20

func renderThing(s string) string {
	s = clean(s)
	if s == "" {
		return "-" // an empty value is 47003 "is empty"
	}
	return cut(s, thingMax, true)
}

func fitsThing(s string) bool {
	n := utf8.RuneCountInString(s)
	return n > 0 && n <= thingMax && !hasControl(s)
}

func hasControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) {
			return true
		}
	}
	return false
}

func isHan(r rune) bool { return unicode.Is(unicode.Han, r) }

func renderPhrase(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if isHan(r) && n < 5 {
			b.WriteRune(r)
			n++
		}
	}
	return b.String()
}

func fitsPhrase(s string) bool {
	n := 0
	for _, r := range s {
		if !isHan(r) {
			return false
		}
		n++
	}
	return n > 0 && n <= 5
}

// renderName keeps letters, Chinese characters and spaces; 20 when there is no Chinese, else
// 10 (WeChat counts a mixed name as a Chinese one).
func renderName(s string) string {
	var b strings.Builder
	for _, r := range clean(s) {
		if unicode.IsLetter(r) || r == ' ' || r == '·' || r == '.' {
			b.WriteRune(r)
		}
	}
	v := strings.TrimSpace(b.String())
	if strings.IndexFunc(v, isHan) >= 0 {
		return strings.TrimSpace(cut(v, 10, false))
	}
	return strings.TrimSpace(cut(v, 20, false))
}

func fitsName(s string) bool {
	n, han := 0, false
	for _, r := range s {
		if unicode.IsControl(r) || unicode.IsDigit(r) {
			return false
		}
		han = han || isHan(r)
		n++
	}
	if han {
		return n > 0 && n <= 10
	}
	return n > 0 && n <= 20
}

// renderCharString keeps printable ASCII without spaces: character_string is digits, letters
// and symbols only.
func renderCharString(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r > ' ' && r < 0x7f && b.Len() < 32 {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func fitsCharString(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r >= 0x7f {
			return false
		}
	}
	return true
}

func fitsSymbol(s string) bool {
	n := 0
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsControl(r) || unicode.IsSpace(r) {
			return false
		}
		n++
	}
	return n > 0 && n <= 5
}

func fitsCarNumber(s string) bool {
	rs := []rune(s)
	if len(rs) == 0 || len(rs) > 8 {
		return false
	}
	for i, r := range rs {
		alnum := r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r))
		if !alnum && !((i == 0 || i == len(rs)-1) && isHan(r)) {
			return false
		}
	}
	return true
}

func matches(expr string, maxLen int) func(string) bool {
	re := regexp.MustCompile(expr)
	return func(s string) bool { return utf8.RuneCountInString(s) <= maxLen && re.MatchString(s) }
}

// The date and time shapes WeChat documents: y年m月d日, y年m月, m月d日, or y-m-d with '-', '/'
// or '.'; times HH:MM or HH:MM:SS; a range joins two with "~".
const (
	datePart = `(\d{4}年\d{1,2}月(\d{1,2}日)?|\d{1,2}月\d{1,2}日|\d{4}[-/.]\d{1,2}[-/.]\d{1,2})`
	timePart = `([01]?\d|2[0-3]):[0-5]\d(:[0-5]\d)?`
)

var (
	timeOne = `(` + datePart + ` ?)?` + timePart
	dateOne = datePart + `( ?` + timePart + `)?`
	reTime  = regexp.MustCompile(`^` + timeOne + `(~` + timeOne + `)?$`)
	reDate  = regexp.MustCompile(`^` + dateOne + `(~` + dateOne + `)?$`)
)

func fitsTime(s string) bool { return reTime.MatchString(s) }
func fitsDate(s string) bool { return reDate.MatchString(s) }
