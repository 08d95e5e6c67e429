package delivery

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/opaque"
)

// Run runs this replica's delivery workers, their heartbeat and the reclaiming of dead
// workers' jobs, and (under a lease, one replica at a time) the release of deferred jobs,
// until ctx ends. Then the workers take no new jobs, finish the ones they hold, and Run
// returns once their heartbeat is handed back.
func (s *Service) Run(ctx context.Context) error {
	if len(s.senders) == 0 {
		return errors.New("delivery: delivery needs a sender of at least one channel")
	}
	err := s.store.Client.XGroupCreateMkStream(ctx, s.store.Key(JobsStream), deliveryGroup, "0").Err()
	switch {
	case ctx.Err() != nil:
		// Stopped before it started (a shutdown right after start-up): there is no job in hand
		// to finish, and stopping is not a failure.
		return nil
	case err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP"):
		return fmt.Errorf("delivery: create the delivery group: %w", err)
	}
	// The consumers' names are new at every start, so a restarted replica is never taken for
	// the one that died, and a lock naming the dead one is not taken for its own.
	id, err := opaque.Random(6)
	if err != nil {
		return err
	}
	r := newReplica(s, id)
	// The heartbeat is written before any worker reads a job: a consumer holding jobs without
	// one would be taken for dead. (Workers wait while it is not written.)
	r.renew(ctx)
	ctx, kill := context.WithCancel(ctx)
	defer kill()
	var workers, loops sync.WaitGroup
	for _, name := range r.names {
		workers.Add(1)
		go func() {
			defer workers.Done()
			s.work(ctx, r, name)
		}()
	}
	loops.Add(3)
	go func() {
		defer loops.Done()
		// Renewed while the workers finish their batches after ctx ended.
		r.beat(context.WithoutCancel(ctx))
	}()
	go func() {
		defer loops.Done()
		select {
		case <-r.died:
			kill()
		case <-ctx.Done():
		}
	}()
	go func() {
		defer loops.Done()
		if err := s.runSchedule(ctx); err != nil {
			s.log.Warn("push: no release of deferred jobs on this replica", "err", err)
		}
	}()
	workers.Wait()
	close(r.shutdown)
	kill()
	loops.Wait()
	select {
	case <-r.died:
	default:
		r.retire(ctx)
	}
	return nil
}

// work is one worker: it takes new jobs, the jobs of workers whose heartbeat is gone, and now
// and then those of workers that stopped answering for ClaimIdle (XAUTOCLAIM), until ctx ends.
func (s *Service) work(ctx context.Context, r *replica, consumer string) {
	stream := s.store.Key(JobsStream)
	lastClaim := time.Time{}
	// A batch that failed (Redis away for a moment, this replica's heartbeat not surely alive)
	// is still pending with this worker, and nobody else takes it before ClaimIdle unless the
	// heartbeat lapses: the worker tries it again itself, a few times, before anything new.
	var retry []redis.XMessage
	var retryTakeover []string
	retries := 0
	for ctx.Err() == nil {
		if !r.alive() {
			// Jobs taken now could be claimed by another worker while this one holds them.
			s.pause(ctx, r.every)
			continue
		}
		var msgs []redis.XMessage
		var takeover []string // workers seen dead, whose locks this one may take over
		if len(retry) > 0 {
			msgs, takeover, retry, retryTakeover = retry, retryTakeover, nil, nil
		}
		if len(msgs) == 0 && r.sweepDue() {
			var err error
			msgs, takeover, err = s.sweep(ctx, r, consumer, s.opts.DeliveryBatch)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("delivery: look for dead workers", "err", err)
			}
		}
		if len(msgs) == 0 && time.Since(lastClaim) >= s.opts.ClaimEvery {
			lastClaim = time.Now()
			claimed, _, err := s.store.Client.XAutoClaim(ctx, &redis.XAutoClaimArgs{
				Stream: stream, Group: deliveryGroup, Consumer: consumer,
				MinIdle: s.opts.ClaimIdle, Start: "0-0", Count: int64(s.opts.DeliveryBatch),
			}).Result()
			if err == nil {
				msgs = claimed
			}
		}
		if len(msgs) == 0 {
			res, err := s.store.Client.XReadGroup(ctx, &redis.XReadGroupArgs{
				Group: deliveryGroup, Consumer: consumer, Streams: []string{stream, ">"},
				Count: int64(s.opts.DeliveryBatch), Block: s.opts.DeliveryPoll,
			}).Result()
			if err != nil {
				if !errors.Is(err, redis.Nil) && ctx.Err() == nil {
					s.log.Warn("delivery: read delivery jobs", "err", err)
					s.pause(ctx, time.Second)
				}
				continue
			}
			for _, stream := range res {
				msgs = append(msgs, stream.Messages...)
			}
		}
		if len(msgs) > 0 {
			// A batch in hand is finished even when ctx ends meanwhile: shutting down hands
			// nothing back half-done. It is bounded well inside ClaimIdle, though: a batch
			// stalled on a slow Redis or FCM fails and stays pending for this worker's retry,
			// rather than running on while XAUTOCLAIM hands its jobs to another worker.
			bctx, stop := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ClaimIdle/2)
			err := s.deliver(bctx, r, consumer, msgs, takeover)
			stop()
			switch {
			case errors.Is(err, errDied):
				return
			case err != nil && retries < maxBatchRetries:
				retries++
				retry, retryTakeover = msgs, takeover
				s.log.Warn("delivery: a delivery batch failed; this worker tries it again", "err", err, "attempt", retries)
				s.pause(ctx, r.every)
			case err != nil:
				retries = 0
				s.log.Warn("delivery: a delivery batch failed again; its jobs stay pending for ClaimIdle", "err", err)
				s.pause(ctx, time.Second)
			default:
				retries = 0
			}
		}
	}
}

// maxBatchRetries is how often a worker tries a failed batch again before leaving its jobs to
// ClaimIdle.
const maxBatchRetries = 3

func (s *Service) pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
