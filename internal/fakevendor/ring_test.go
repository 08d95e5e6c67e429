package fakevendor

import (
	"slices"
	"testing"
)

func TestRing(t *testing.T) {
	r := NewRing[int](3)
	if r.Len() != 0 || r.Oldest() != nil || r.Newest() == nil || len(r.Newest()) != 0 {
		t.Fatalf("empty ring: len %d, oldest %v, newest %#v", r.Len(), r.Oldest(), r.Newest())
	}
	for i := 1; i <= 2; i++ {
		r.Add(i)
	}
	if got := r.Oldest(); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("Oldest = %v", got)
	}
	for i := 3; i <= 7; i++ {
		r.Add(i)
	}
	if r.Len() != 3 {
		t.Fatalf("Len = %d, want 3", r.Len())
	}
	if got := r.Oldest(); !slices.Equal(got, []int{5, 6, 7}) {
		t.Fatalf("Oldest = %v, want [5 6 7]", got)
	}
	if got := r.Newest(); !slices.Equal(got, []int{7, 6, 5}) {
		t.Fatalf("Newest = %v, want [7 6 5]", got)
	}
	// The copies are the caller's.
	got := r.Oldest()
	got[0] = 99
	if r.Oldest()[0] != 5 {
		t.Fatal("Oldest shares the ring's storage")
	}
	if cap(r.buf) > 4 {
		t.Fatalf("ring grew to cap %d past its keep of 3", cap(r.buf))
	}
}

func TestNewRingNeedsKeep(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("NewRing(0) did not panic")
		}
	}()
	NewRing[int](0)
}
