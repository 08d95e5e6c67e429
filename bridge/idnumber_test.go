package bridge

import (
	"slices"
	"testing"
)

func TestReleasableWithholdsIDNumberBelowTheClientsLevel(t *testing.T) {
	all := []string{"openid", "profile", "id_number", "offline_access"}
	for _, tt := range []struct {
		name      string
		min       int
		assurance int
		want      []string
	}{
		{"unverified login, default level", 0, 1, []string{"openid", "profile", "offline_access"}},
		{"level 2, default level", 0, 2, []string{"openid", "profile", "offline_access"}},
		{"level 3, default level", 0, 3, all},
		{"face, default level", 0, 4, all},
		{"level 3 below a client that asks for face", 4, 3, []string{"openid", "profile", "offline_access"}},
		{"a client that takes any login", 1, 1, all},
		{"no assurance recorded", 1, 0, []string{"openid", "profile", "offline_access"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &Client{ID: "sufuban", MinAssuranceForIDNumber: tt.min}
			in := slices.Clone(all)
			if got := c.releasable(in, tt.assurance); !slices.Equal(got, tt.want) {
				t.Errorf("releasable = %v, want %v", got, tt.want)
			}
			if !slices.Equal(in, all) {
				t.Errorf("releasable changed its argument: %v", in)
			}
		})
	}
}

func TestWithheldNamesWhatALoginCannotRelease(t *testing.T) {
	c := &Client{ID: "sufuban", Scopes: []string{"openid", "profile", "phone", "id_number"}}
	if got := c.withheld(1); !slices.Equal(got, []string{"id_number"}) {
		t.Errorf("level 1: withheld %v, want [id_number]", got)
	}
	if got := c.withheld(3); len(got) != 0 {
		t.Errorf("level 3: withheld %v, want none", got)
	}
	c.Scopes = []string{"openid", "profile"}
	if got := c.withheld(1); len(got) != 0 {
		t.Errorf("a client without id_number: withheld %v", got)
	}
}
