package delivery_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/testenv"
	"github.com/tongban/tongban/push/delivery"
)

var settleSeq atomic.Int64

// settled waits until delivery has done everything the clock's present time allows, so that a
// test can then assert that nothing more was sent. A marker job due now goes onto the
// schedule; once the schedule has released it, the poller has made a pass at this time or
// later, which released whatever was due and left what is due later where it is (the release
// is one script). Once the stream then holds no job, every released job has been sent,
// recorded and acknowledged (acknowledged jobs leave the stream), and until the clock moves
// nothing more can go out. The marker names no notification: a worker records it expired and
// sends nothing.
func (w *deliveryWorld) settled() {
	w.t.Helper()
	ctx := context.Background()
	marker, err := json.Marshal(delivery.Job{Note: fmt.Sprint("settle-", settleSeq.Add(1)), Person: "settle-marker", Rule: "settle", Version: 1})
	if err != nil {
		w.t.Fatal(err)
	}
	schedule := w.store.Key(delivery.Schedule)
	due := float64(w.clock.Now().UnixMilli())
	if err := w.store.Client.ZAdd(ctx, schedule, redis.Z{Score: due, Member: string(marker)}).Err(); err != nil {
		w.t.Fatalf("schedule the marker: %v", err)
	}
	testenv.Eventually(w.t, 10*time.Second, func() bool {
		err := w.store.Client.ZScore(ctx, schedule, string(marker)).Err()
		if err != nil && !errors.Is(err, redis.Nil) {
			w.t.Fatalf("read the schedule: %v", err)
		}
		return errors.Is(err, redis.Nil)
	}, "the schedule releases a marker due now")
	testenv.Eventually(w.t, 10*time.Second, func() bool {
		n, err := w.store.Client.XLen(ctx, w.store.Key(delivery.JobsStream)).Result()
		if err != nil {
			w.t.Fatalf("read the jobs stream: %v", err)
		}
		return n == 0
	}, "the jobs stream empties")
}
