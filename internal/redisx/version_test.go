package redisx

import (
	"context"
	"os"
	"testing"
)

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		info string
		want [2]int
		ok   bool
	}{
		{"# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:0\r\n", [2]int{7, 0}, true},
		{"redis_version:6.2.14\n", [2]int{6, 2}, true},
		{"redis_version:8.2\n", [2]int{8, 2}, true},
		{"redis_version:seven\n", [2]int{}, false},
		{"# Server\n", [2]int{}, false},
	} {
		got, ok := parseVersion(tc.info)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseVersion(%q) = %v %v, want %v %v", tc.info, got, ok, tc.want, tc.ok)
		}
	}
}

// The Redis CI and the machine run is new enough; the embedded store is never checked.
func TestCheckVersion(t *testing.T) {
	embedded, err := OpenEmbedded("tbt:")
	if err != nil {
		t.Fatal(err)
	}
	defer embedded.Close()
	if err := embedded.CheckVersion(context.Background()); err != nil {
		t.Errorf("embedded: %v", err)
	}
	url := os.Getenv("REDIS_URL")
	if url == "" {
		t.Skip("REDIS_URL not set: no real Redis to check")
	}
	s, err := Open(Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CheckVersion(context.Background()); err != nil {
		t.Errorf("real Redis: %v", err)
	}
}
