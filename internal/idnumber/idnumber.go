package idnumber

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Len is the length of a second-generation number. First-generation 15-digit numbers stopped
// being valid in 2013 and are refused.
const Len = 18

// Errors Parse returns; callers branch on them to say what is wrong without echoing the number.
var (
	ErrLength    = errors.New("idnumber: must be 18 characters")
	ErrCharacter = errors.New("idnumber: the first 17 characters must be digits and the last a digit or X")
	ErrBirthDate = errors.New("idnumber: the birth date is not a real date")
	ErrDivision  = errors.New("idnumber: the division code is not a province of China")
	ErrChecksum  = errors.New("idnumber: the check character does not match")
)

// weights are 2^(17-i) mod 11 for positions 0..16 (GB 11643 §8).
var weights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

// checkChars maps the weighted sum mod 11 to the check character.
const checkChars = "10X98765432"

// Number is a checked, normalized identity number.
type Number struct {
	s string
}

// Parse checks s and returns it normalized: surrounding space removed and a lower-case x made
// upper. Errors never contain the number.
func Parse(s string) (Number, error) {
	s = strings.TrimSpace(s)
	if len(s) != Len {
		return Number{}, ErrLength
	}
	b := []byte(s)
	if b[17] == 'x' {
		b[17] = 'X'
	}
	for i, c := range b {
		if c >= '0' && c <= '9' || i == 17 && c == 'X' {
			continue
		}
		return Number{}, ErrCharacter
	}
	if CheckChar(string(b[:17])) != b[17] {
		return Number{}, ErrChecksum
	}
	if _, ok := provinces[string(b[:2])]; !ok {
		return Number{}, ErrDivision
	}
	if _, err := time.Parse("20060102", string(b[6:14])); err != nil {
		return Number{}, ErrBirthDate
	}
	return Number{s: string(b)}, nil
}

// CheckChar returns the check character of the first 17 digits. It is what Parse compares the
// 18th character with, and what fixtures use to build valid numbers. first17 must be 17 ASCII
// digits; anything else yields 0.
func CheckChar(first17 string) byte {
	if len(first17) != 17 {
		return 0
	}
	sum := 0
	for i := 0; i < 17; i++ {
		c := first17[i]
		if c < '0' || c > '9' {
			return 0
		}
		sum += int(c-'0') * weights[i]
	}
	return checkChars[sum%11]
}

// Build returns the number for a division code, a birth date and a three-digit sequence, with
// its check character. Tests and dev fixtures use it.
func Build(division string, birth time.Time, seq int) (Number, error) {
	if len(division) != 6 || seq < 0 || seq > 999 {
		return Number{}, fmt.Errorf("idnumber: build: bad division %q or sequence %d", division, seq)
	}
	first17 := fmt.Sprintf("%s%s%03d", division, birth.Format("20060102"), seq)
	return Parse(first17 + string(CheckChar(first17)))
}

// String returns the full normalized number. Call it only to compute a link key or to seal it.
func (n Number) String() string { return n.s }

// IsZero reports whether n is the zero Number.
func (n Number) IsZero() bool { return n.s == "" }

// Masked is the form that may be shown and kept: the first 3 and last 4 characters.
func (n Number) Masked() string {
	if n.s == "" {
		return ""
	}
	return n.s[:3] + strings.Repeat("*", Len-7) + n.s[Len-4:]
}

// Division is the six-digit administrative division code of the first registration (户籍).
func (n Number) Division() string { return n.s[:6] }

// Province is the name of the division's province-level region.
func (n Number) Province() string { return provinces[n.s[:2]] }

// BirthDate is the date of birth, at midnight UTC.
func (n Number) BirthDate() time.Time {
	t, _ := time.Parse("20060102", n.s[6:14])
	return t
}

// Gender is "M" when the sequence's last digit is odd, "F" when it is even.
func (n Number) Gender() string {
	if (n.s[16]-'0')%2 == 1 {
		return "M"
	}
	return "F"
}

// provinces are the province-level divisions by the first two digits of the code (GB/T 2260).
var provinces = map[string]string{
	"11": "北京市", "12": "天津市", "13": "河北省", "14": "山西省", "15": "内蒙古自治区",
	"21": "辽宁省", "22": "吉林省", "23": "黑龙江省",
	"31": "上海市", "32": "江苏省", "33": "浙江省", "34": "安徽省", "35": "福建省", "36": "江西省", "37": "山东省",
	"41": "河南省", "42": "湖北省", "43": "湖南省", "44": "广东省", "45": "广西壮族自治区", "46": "海南省",
	"50": "重庆市", "51": "四川省", "52": "贵州省", "53": "云南省", "54": "西藏自治区",
	"61": "陕西省", "62": "甘肃省", "63": "青海省", "64": "宁夏回族自治区", "65": "新疆维吾尔自治区",
	"71": "台湾省", "81": "香港特别行政区", "82": "澳门特别行政区",
}
