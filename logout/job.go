package logout

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// Job is one logout token to deliver: one ended grant of one client.
type Job struct {
	Client  string // client id
	Subject string // the client's sub for the person (pairwise or public)
	SID     string // the grant id: the sid its ID tokens carried
	Reason  string // why the grant ended (logs and metrics only)
	// Check is a store key (full, prefixed) that must exist at the first attempt, else the job
	// is dropped: the bridge's tombstone of a grant that existed. "" checks nothing.
	Check string
	// JTI is the token's id, the same across retries; QueueSend fills it when empty.
	JTI string
}

// Endpoints says where a client receives its logout tokens.
type Endpoints interface {
	BackchannelLogoutURI(client string) (string, bool)
}

// Minter signs a logout token.
type Minter interface {
	LogoutToken(client, subject, sid, jti string) (string, error)
}

// QueueSend queues jobs on p (XADD on the jobs stream).
func (s *Service) QueueSend(ctx context.Context, p redis.Pipeliner, jobs ...Job) {
	panic("logout: QueueSend is being written")
}
