package main

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Apply-fault: an error between applying an event and notifying. The command the notify script
// starts with, HSETNX (the dedup slot of a rule version and a person), is denied to the default
// user for denyFor, under the mixed load, while the apply script (ZSCORE, HGETALL, ZADD, HSET,
// …) still runs: every birth in that window is applied and then answered INTERNAL. The data
// platform retries it after the window; the retry must end with the event's notification.
//
// The births name people who signed in before the load, by their app account: a birth naming
// someone by ID number writes the person's facts with HSETNX first (identity.EnsurePersons),
// and one refused there never reaches the apply.
// Denying EVALSHA and EVAL for moments (which the issue did) hits the same gap, but only when a
// denial happens to start between a call's two scripts, a millisecond apart: a few calls in a
// thousand. Denying what only the second step runs makes every call in the window fall in it.
const (
	denyFor          = 3 * time.Second
	applyFaultPeople = 1200
)

func runApplyFault(ctx context.Context, s *suite, r *result) {
	u := underLoad{
		warmup: 4 * time.Second, after: 6 * time.Second, readyBound: 1500 * time.Millisecond,
		prepare: func(ctx context.Context, in *instance, l *loader) error {
			people, err := setUpPeople(ctx, s, in, applyFaultPeople, 0)
			if err != nil {
				return err
			}
			for _, p := range people {
				l.existing = append(l.existing, p.c.Key)
			}
			return nil
		},
	}
	u.inject = func(ctx context.Context) (window, error) {
		ns, err := s.target.nodes(ctx)
		if err != nil {
			return window{}, err
		}
		acl := func(ctx context.Context, rule string) error {
			for _, n := range ns {
				if !n.master {
					continue
				}
				c := redis.NewClient(&redis.Options{Addr: n.addr})
				err := c.Do(ctx, "ACL", "SETUSER", "default", rule).Err()
				c.Close()
				if err != nil {
					return fmt.Errorf("ACL SETUSER default %s on %s: %w", rule, n.addr, err)
				}
			}
			return nil
		}
		// Put back however the suite ends (with a context of its own: ctx may be why).
		restore := s.onExit(func() {
			if err := acl(context.Background(), "+hsetnx"); err != nil {
				fmt.Println("faultsuite: could not give HSETNX back to the default user:", err)
			}
		})
		if err := acl(ctx, "-hsetnx"); err != nil {
			restore()
			return window{}, err
		}
		from := time.Now()
		sleep(ctx, denyFor)
		restore()
		r.figure("denied", "HSETNX to the default user for %s on every master (ACL SETUSER default -hsetnx, then +hsetnx)", denyFor)
		return window{from, time.Now()}, nil
	}
	u.run(ctx, s, r)
}
