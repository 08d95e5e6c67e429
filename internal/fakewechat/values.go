package fakewechat

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// CheckValue reports whether WeChat accepts value for a template key, by the key's type (the
// name before its number) and subscribeMessage.send's table of limits:
//
//	thing ≤ 20 characters; number ≤ 32 digits, decimals allowed; letter ≤ 32 letters;
//	symbol ≤ 5 symbols; character_string ≤ 32 digits, letters, symbols; time a 24-hour time,
//	a date may precede it; date a date, a time may follow it (either a range with "~");
//	amount a currency sign and ≤ 10 digits, "元" may end it; phone_number ≤ 17 digits and
//	symbols; car_number ≤ 8, first and last may be Chinese; name ≤ 10 Chinese or ≤ 20
//	letters and symbols; phrase ≤ 5 Chinese characters; enum a non-empty value.
//
// No value may hold control characters (line breaks). An unknown type is refused.
func CheckValue(key, value string) bool {
	typ := strings.TrimRight(key, "0123456789")
	if typ == key || value == "" || !utf8.ValidString(value) {
		return false
	}
	for _, r := range value {
		if unicode.IsControl(r) {
			return false
		}
	}
	n := utf8.RuneCountInString(value)
	switch typ {
	case "thing":
		return n <= 20
	case "number":
		return reNumber.MatchString(value)
	case "letter":
		return n <= 32 && all(value, func(r rune) bool { return r < 0x80 && unicode.IsLetter(r) })
	case "symbol":
		return n <= 5 && all(value, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsSpace(r) })
	case "character_string":
		return n <= 32 && all(value, func(r rune) bool { return r > ' ' && r < 0x7f })
	case "time":
		return reTime.MatchString(value)
	case "date":
		return reDate.MatchString(value)
	case "amount":
		return reAmount.MatchString(value)
	case "phone_number":
		return n <= 17 && all(value, func(r rune) bool { return r < 0x80 && !unicode.IsLetter(r) })
	case "car_number":
		rs := []rune(value)
		for i, r := range rs {
			ascii := r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r))
			if !ascii && !((i == 0 || i == len(rs)-1) && unicode.Is(unicode.Han, r)) {
				return false
			}
		}
		return n <= 8
	case "name":
		if strings.ContainsFunc(value, unicode.IsDigit) {
			return false
		}
		if strings.ContainsFunc(value, isHan) {
			return n <= 10
		}
		return n <= 20
	case "phrase":
		return n <= 5 && all(value, isHan)
	case "enum":
		return n <= 20
	}
	return false
}

func isHan(r rune) bool { return unicode.Is(unicode.Han, r) }

func all(s string, f func(rune) bool) bool {
	for _, r := range s {
		if !f(r) {
			return false
		}
	}
	return true
}

const (
	fDate = `(\d{4}年\d{1,2}月(\d{1,2}日)?|\d{1,2}月\d{1,2}日|\d{4}[-/.]\d{1,2}[-/.]\d{1,2})`
	fTime = `([01]?\d|2[0-3]):[0-5]\d(:[0-5]\d)?`
)

var (
	reNumber = regexp.MustCompile(`^\d{1,32}(\.\d+)?$`)
	reAmount = regexp.MustCompile(`^[¥￥$€£]?\d{1,10}(\.\d{1,2})?元?$`)
	reTime   = regexp.MustCompile(`^(` + fDate + ` ?)?` + fTime + `(~(` + fDate + ` ?)?` + fTime + `)?$`)
	reDate   = regexp.MustCompile(`^` + fDate + `( ?` + fTime + `)?(~` + fDate + `( ?` + fTime + `)?)?$`)
)
