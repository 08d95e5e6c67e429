package fakevendor

// Ring keeps the last values added to it, at most its capacity: a fake's record of the
// messages it accepted or the attempts it saw. Unlike Replies it has no lock of its own; the
// fake guards it with the lock it holds while recording.
type Ring[T any] struct {
	buf   []T
	start int // index of the oldest once buf is full
	keep  int
}

// NewRing returns an empty Ring that keeps the last keep values (keep > 0).
func NewRing[T any](keep int) Ring[T] {
	if keep <= 0 {
		panic("fakevendor: NewRing needs keep > 0")
	}
	return Ring[T]{keep: keep}
}

// Add records v, dropping the oldest value once the ring holds its capacity.
func (r *Ring[T]) Add(v T) {
	if len(r.buf) < r.keep {
		r.buf = append(r.buf, v)
		return
	}
	r.buf[r.start] = v
	r.start = (r.start + 1) % r.keep
}

// Len is how many values the ring holds.
func (r *Ring[T]) Len() int { return len(r.buf) }

// Oldest returns a copy of the values, oldest first; nil when there are none.
func (r *Ring[T]) Oldest() []T {
	if len(r.buf) == 0 {
		return nil
	}
	out := make([]T, len(r.buf))
	for i := range r.buf {
		out[i] = r.buf[(r.start+i)%len(r.buf)]
	}
	return out
}

// Newest returns a copy of the values, newest first; empty, not nil, when there are none, so
// that it encodes as a JSON array.
func (r *Ring[T]) Newest() []T {
	out := make([]T, len(r.buf))
	for i := range r.buf {
		out[len(out)-1-i] = r.buf[(r.start+i)%len(r.buf)]
	}
	return out
}
