package devidp

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/idnumber"
)

func TestFixtures(t *testing.T) {
	// The last evening of a month in UTC is already the next month in China.
	for _, now := range []time.Time{
		time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 31, 20, 0, 0, 0, time.UTC),
		time.Date(2024, 2, 29, 9, 0, 0, 0, time.Local),
	} {
		t.Run(now.Format(time.RFC3339), func(t *testing.T) {
			cs := Fixtures(now)
			if len(cs) < 6 {
				t.Fatalf("%d citizens, want at least 6", len(cs))
			}
			provinces, genders, keys := map[string]bool{}, map[string]bool{}, map[string]bool{}
			subjects := map[string]string{} // app+sub -> key
			level1 := 0
			for _, c := range cs {
				n, err := idnumber.Parse(c.IDNumber)
				if err != nil || n.String() != c.IDNumber {
					t.Errorf("%s: ID number %q: %v", c.Key, c.IDNumber, err)
					continue
				}
				provinces[n.Province()] = true
				genders[n.Gender()] = true
				if keys[c.Key] || c.Key != strings.ToLower(c.Key) || !strings.Contains(c.Key, "-") || c.Name == "" || c.Phone == "" {
					t.Errorf("citizen %+v: repeated or malformed key, or no name or phone", c)
				}
				keys[c.Key] = true
				if len(c.Accounts) < 2 {
					t.Errorf("%s has %d accounts, want at least 2", c.Key, len(c.Accounts))
				}
				for app, a := range c.Accounts {
					if !slices.Contains([]string{"zheliban", "suishenban", "sufuban"}, app) {
						t.Errorf("%s: unknown app %q", c.Key, app)
					}
					if other, dup := subjects[app+" "+a.Subject]; dup {
						t.Errorf("%s and %s share sub %q in %s", c.Key, other, a.Subject, app)
					}
					subjects[app+" "+a.Subject] = c.Key
					if !slices.Contains([]string{ACRLevel1, ACRLevel2, ACRLevel3, ACRFace}, a.ACR) {
						t.Errorf("%s: acr %q", c.Key, a.ACR)
					}
					if a.ACR == ACRLevel1 {
						level1++
					}
				}
			}
			for _, p := range []string{"浙江省", "上海市", "江苏省", "安徽省"} {
				if !provinces[p] {
					t.Errorf("no citizen registered in %s", p)
				}
			}
			if !genders["M"] || !genders["F"] {
				t.Errorf("genders %v, want both", genders)
			}
			if level1 == 0 {
				t.Error("no unverified (level 1) account")
			}

			chen, ok := FindCitizen(cs, "chen-jianguo")
			if !ok {
				t.Fatal("chen-jianguo missing")
			}
			n, err := idnumber.Parse(chen.IDNumber)
			if err != nil {
				t.Fatal(err)
			}
			cn := now.In(time.FixedZone("", 8*3600))
			if b := n.BirthDate(); b.Year() != cn.Year()-60 || b.Month() != cn.Month() {
				t.Errorf("chen-jianguo born %v, want %d-%02d", b, cn.Year()-60, cn.Month())
			}
			if liu, _ := FindCitizen(cs, "liu-yang"); !hasACR(liu, ACRLevel1) {
				t.Error("liu-yang has no level 1 account")
			}
		})
	}
}

func hasACR(c Citizen, acr string) bool {
	for _, a := range c.Accounts {
		if a.ACR == acr {
			return true
		}
	}
	return false
}

func TestFixturesAreIndependentCopies(t *testing.T) {
	now := time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC)
	a := Fixtures(now)
	a[0].Accounts["zheliban"] = Account{Subject: "changed"}
	if b := Fixtures(now); b[0].Accounts["zheliban"].Subject == "changed" {
		t.Error("Fixtures shares its account maps between calls")
	}
}

func TestFixturesForAbsurdNow(t *testing.T) {
	// No valid number carries a birth year before year 1; the citizen is left out, no panic.
	cs := Fixtures(time.Time{})
	if _, ok := FindCitizen(cs, "chen-jianguo"); ok {
		t.Error("chen-jianguo born before year 1")
	}
	if _, ok := FindCitizen(cs, "wang-fang"); !ok {
		t.Error("the other citizens must not depend on now")
	}
}

func TestFindCitizen(t *testing.T) {
	cs := Fixtures(time.Now())
	if c, ok := FindCitizen(cs, "wang-fang"); !ok || c.Name != "王芳" {
		t.Errorf("wang-fang: %+v %v", c, ok)
	}
	if _, ok := FindCitizen(cs, "nobody"); ok {
		t.Error("found nobody")
	}
}
