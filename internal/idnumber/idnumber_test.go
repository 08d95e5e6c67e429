package idnumber

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseAcceptsAndDerives(t *testing.T) {
	// 11010519491231002X is the worked example of GB 11643-1999's appendix.
	n, err := Parse(" 11010519491231002x ")
	if err != nil {
		t.Fatal(err)
	}
	if n.String() != "11010519491231002X" {
		t.Errorf("normalized = %q", n.String())
	}
	if got := n.BirthDate(); !got.Equal(time.Date(1949, 12, 31, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("birth = %v", got)
	}
	if n.Gender() != "F" || n.Division() != "110105" || n.Province() != "北京市" {
		t.Errorf("gender %q division %q province %q", n.Gender(), n.Division(), n.Province())
	}
	if n.Masked() != "110***********002X" {
		t.Errorf("masked = %q", n.Masked())
	}
	if strings.Contains(n.Masked(), "19491231") {
		t.Error("masked form shows the birth date")
	}
}

func TestParseRejects(t *testing.T) {
	valid, err := Build("330402", time.Date(1980, 2, 29, 0, 0, 0, 0, time.UTC), 123)
	if err != nil {
		t.Fatal(err)
	}
	v := valid.String()
	wrongCheck := v[:17] + string("0123456789X"[(strings.IndexByte("0123456789X", v[17])+1)%11])
	for _, tc := range []struct {
		name, in string
		want     error
	}{
		{"empty", "", ErrLength},
		{"fifteen digits (first generation)", "330402800229123", ErrLength},
		{"nineteen characters", v + "1", ErrLength},
		{"letter inside", v[:5] + "A" + v[6:], ErrCharacter},
		{"X not last", "X" + v[1:], ErrCharacter},
		{"wrong check character", wrongCheck, ErrChecksum},
		{"not a date", rebuild("330402", "19810229", "123"), ErrBirthDate},
		{"unknown province", rebuild("990402", "19800229", "123"), ErrDivision},
		{"full-width digits", "３３０４０２１９８００２２９１２３" + "4", ErrLength},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Parse = %v, want %v", err, tc.want)
			}
			if tc.in != "" && strings.Contains(err.Error(), strings.TrimSpace(tc.in)) {
				t.Errorf("error %q echoes the number", err)
			}
		})
	}
}

func rebuild(division, birth, seq string) string {
	first17 := division + birth + seq
	return first17 + string(CheckChar(first17))
}

func TestGenderFromSequence(t *testing.T) {
	for seq, want := range map[int]string{1: "M", 2: "F", 999: "M", 0: "F"} {
		n, err := Build("310101", time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC), seq)
		if err != nil {
			t.Fatal(err)
		}
		if n.Gender() != want {
			t.Errorf("seq %03d: gender %s, want %s", seq, n.Gender(), want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"11010519491231002X", "11010519491231002x", "", "330402198002291234", "xxxxxxxxxxxxxxxxxx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(n.String())
		if err != nil || again != n {
			t.Fatalf("normalized %q does not parse to itself: %v", n.String(), err)
		}
		_ = n.BirthDate()
		_ = n.Gender()
		_ = n.Province()
		if len(n.Masked()) != Len {
			t.Fatalf("masked %q", n.Masked())
		}
	})
}
