package devidp

import (
	"time"

	"github.com/tongban/tongban/internal/idnumber"
)

// Citizen is one sample person. Accounts maps app id -> that app's account.
type Citizen struct {
	Key      string // fixture key used in login_hint and /mint, e.g. "wang-fang"
	Name     string // Chinese name
	IDNumber string // valid 18-char GB 11643 number (built with idnumber.Build)
	Phone    string
	Accounts map[string]Account
}

// Account is a citizen's account in one app.
type Account struct {
	Subject string // the provider's sub for this citizen, stable, e.g. "zlb-0001"
	ACR     string // one of ACRLevel1..ACRFace
}

// Assurance levels a simulated provider reports in acr. Level 1 is a self-registered,
// unverified account: Tongban must not link it to an ID number on its own.
const (
	ACRLevel1 = "urn:tongban:dev:loa1"
	ACRLevel2 = "urn:tongban:dev:loa2"
	ACRLevel3 = "urn:tongban:dev:loa3"
	ACRFace   = "urn:tongban:dev:face"
)

// chinaTime is China Standard Time. "This month" for the citizen who turns 60 is the month in
// China, where the fixtures live; a fixed zone needs no tzdata, and China has had no DST since
// 1991.
var chinaTime = time.FixedZone("CST", 8*60*60)

// fixture is one row of the sample table. A zero birth means "60 years before now's month".
type fixture struct {
	key, name string
	division  string
	birth     time.Time
	seq       int // odd for men, even for women (GB 11643)
	phone     string
	accounts  map[string]Account
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// fixtures is the sample table; Fixtures documents it.
var fixtures = []fixture{
	{"wang-fang", "王芳", "330106", date(1985, 3, 12), 108, "13905710001", map[string]Account{
		"zheliban":   {"zlb-0001", ACRFace},
		"suishenban": {"ssb-0001", ACRLevel3},
	}},
	{"chen-jianguo", "陈建国", "330402", time.Time{}, 131, "13905730002", map[string]Account{
		"zheliban": {"zlb-0002", ACRLevel3},
		"sufuban":  {"sfb-0001", ACRLevel3},
	}},
	{"liu-yang", "刘洋", "310115", date(1992, 7, 8), 111, "13801210003", map[string]Account{
		"suishenban": {"ssb-0002", ACRLevel1},
		"sufuban":    {"sfb-0002", ACRLevel3},
	}},
	{"zhang-wei", "张伟", "320505", date(1978, 11, 23), 123, "13912120004", map[string]Account{
		"sufuban":  {"sfb-0003", ACRFace},
		"zheliban": {"zlb-0003", ACRLevel3},
	}},
	{"li-na", "李娜", "340104", date(1990, 1, 30), 102, "13955100005", map[string]Account{
		"zheliban": {"zlb-0004", ACRLevel2},
		"sufuban":  {"sfb-0004", ACRLevel3},
	}},
	{"zhou-ting", "周婷", "310118", date(2001, 5, 4), 104, "13801180006", map[string]Account{
		"zheliban":   {"zlb-0005", ACRFace},
		"suishenban": {"ssb-0003", ACRFace},
		"sufuban":    {"sfb-0005", ACRLevel3},
	}},
	{"xu-lei", "徐磊", "320509", date(1969, 9, 9), 117, "13962550007", map[string]Account{
		"sufuban":    {"sfb-0006", ACRLevel3},
		"suishenban": {"ssb-0004", ACRLevel3},
	}},
}

// Fixtures returns the sample citizens, deterministic for a given now (only the one who turns
// 60 depends on now):
//
//	key           name    registered (户籍)        born              accounts
//	wang-fang     王芳 F  330106 杭州西湖区        1985-03-12         zheliban zlb-0001 face, suishenban ssb-0001 loa3 (number ends in X)
//	chen-jianguo  陈建国 M 330402 嘉兴南湖区        1st of now's month, 60 years ago (China time)
//	                                                                 zheliban zlb-0002 loa3, sufuban sfb-0001 loa3
//	liu-yang      刘洋 M  310115 上海浦东新区      1992-07-08         suishenban ssb-0002 loa1 (unverified: must not auto-link), sufuban sfb-0002 loa3
//	zhang-wei     张伟 M  320505 苏州虎丘区        1978-11-23         sufuban sfb-0003 face, zheliban zlb-0003 loa3
//	li-na         李娜 F  340104 合肥蜀山区        1990-01-30         zheliban zlb-0004 loa2, sufuban sfb-0004 loa3
//	zhou-ting     周婷 F  310118 上海青浦区        2001-05-04         zheliban zlb-0005 face, suishenban ssb-0003 face, sufuban sfb-0005 loa3
//	xu-lei        徐磊 M  320509 苏州吴江区        1969-09-09         sufuban sfb-0006 loa3, suishenban ssb-0004 loa3
//
// Subjects are numbered per app, so the same person has unrelated subs in different apps, as
// with real providers; only the ID number ties them together. For a now whose year is so far
// off that no valid number can carry the birth date, chen-jianguo is left out.
func Fixtures(now time.Time) []Citizen {
	cn := now.In(chinaTime)
	out := make([]Citizen, 0, len(fixtures))
	for _, f := range fixtures {
		birth := f.birth
		if birth.IsZero() {
			birth = date(cn.Year()-60, cn.Month(), 1)
		}
		n, err := idnumber.Build(f.division, birth, f.seq)
		if err != nil {
			continue
		}
		accounts := make(map[string]Account, len(f.accounts))
		for app, a := range f.accounts {
			accounts[app] = a
		}
		out = append(out, Citizen{Key: f.key, Name: f.name, IDNumber: n.String(), Phone: f.phone, Accounts: accounts})
	}
	return out
}

// FindCitizen returns the citizen of cs with key.
func FindCitizen(cs []Citizen, key string) (Citizen, bool) {
	for _, c := range cs {
		if c.Key == key {
			return c, true
		}
	}
	return Citizen{}, false
}
