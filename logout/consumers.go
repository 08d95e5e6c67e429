package logout

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// Every start of a replica adds Workers consumers to the group (their names are new each time,
// so a restarted replica is never taken for the one that died). Left alone they would pile up
// in XINFO CONSUMERS forever. A stopping replica deletes its own; the retry loop's lease holder
// deletes those of replicas that died, once they own nothing and have not read for
// staleConsumer (a live worker reads every Poll).

// staleConsumer is how long a consumer owning nothing has not read before it is deleted.
const staleConsumer = 10 * time.Minute

// dropConsumerScript deletes a consumer from the group if it owns no pending entry, in one
// step: XGROUP DELCONSUMER would drop the entries it still owned from the group, lost to
// every worker. KEYS: stream; ARGV: group, consumer. Returns 1 when deleted.
var dropConsumerScript = redis.NewScript(`
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
`)

// dropConsumers deletes the named consumers that own nothing.
func (s *Service) dropConsumers(ctx context.Context, names []string) {
	for _, name := range names {
		if err := dropConsumerScript.Run(ctx, s.store.Client, []string{s.jobsKey}, group, name).Err(); err != nil {
			s.log.Warn("logout: delete a stopped consumer from the group", "err", err, "consumer", name)
			return
		}
	}
}

// dropStaleConsumers deletes the consumers of replicas gone for staleConsumer that own nothing.
func (s *Service) dropStaleConsumers(ctx context.Context) {
	consumers, err := s.store.Client.XInfoConsumers(ctx, s.jobsKey, group).Result()
	if err != nil {
		s.log.Warn("logout: list the group's consumers", "err", err)
		return
	}
	var stale []string
	for _, c := range consumers {
		if c.Pending == 0 && c.Idle >= staleConsumer {
			stale = append(stale, c.Name)
		}
	}
	s.dropConsumers(ctx, stale)
}
