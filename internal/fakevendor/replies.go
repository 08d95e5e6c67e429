package fakevendor

import "sync"

// Replies queues scripted replies of type R: Fail queues one for the next requests whatever
// their target, Script queues them for one target. The zero Replies is empty and ready to use;
// it is safe for concurrent use and must not be copied after first use.
//
// Which queue a request consults, and when, is the fake's to decide: Next and NextFor take
// from one queue each, so a fake keeps whatever order of precedence it documents.
type Replies[R any] struct {
	mu      sync.Mutex
	next    []R
	scripts map[string][]R
}

// Fail queues reply for the next n requests, whatever their target, after those already queued.
func (q *Replies[R]) Fail(n int, reply R) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for range n {
		q.next = append(q.next, reply)
	}
}

// Script queues replies for target, after those already queued for it.
func (q *Replies[R]) Script(target string, replies ...R) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(replies) == 0 {
		return
	}
	if q.scripts == nil {
		q.scripts = make(map[string][]R)
	}
	q.scripts[target] = append(q.scripts[target], replies...)
}

// Next takes the oldest reply queued by Fail; false (and the zero R) when there is none.
func (q *Replies[R]) Next() (R, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var zero R
	if len(q.next) == 0 {
		return zero, false
	}
	r := q.next[0]
	q.next[0] = zero
	q.next = q.next[1:]
	return r, true
}

// NextFor takes the oldest reply scripted for target; false (and the zero R) when there is none.
func (q *Replies[R]) NextFor(target string) (R, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var zero R
	s := q.scripts[target]
	if len(s) == 0 {
		return zero, false
	}
	r := s[0]
	if len(s) == 1 {
		delete(q.scripts, target)
	} else {
		s[0] = zero
		q.scripts[target] = s[1:]
	}
	return r, true
}

// Reset forgets every queued reply.
func (q *Replies[R]) Reset() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.next, q.scripts = nil, nil
}
