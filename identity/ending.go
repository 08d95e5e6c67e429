package identity

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// EndReason says why a session ended. It is recorded in the person's activity and handed to
// the hooks (OnEnd) that end what was bound to the session.
type EndReason string

// Why sessions end.
const (
	EndSignOut        EndReason = "sign_out"
	EndEverywhere     EndReason = "sign_out_everywhere"
	EndByPerson       EndReason = "ended_by_person" // endSession(id), from another of the person's sessions
	EndRefreshReuse   EndReason = "refresh_token_reuse"
	EndEvicted        EndReason = "evicted" // the per-person limit ended the oldest
	EndUpstreamLogout EndReason = "upstream_logout"
	EndRPLogout       EndReason = "rp_logout" // a member app's /oauth2/logout
	EndRevoked        EndReason = "token_revoked"
	EndUnlinked       EndReason = "account_unlinked"
	EndMerged         EndReason = "person_merged"
)

// Ended is one session that ended, and what was bound to it (QueueBind).
type Ended struct {
	Session, Person, App string
	Reason               EndReason
	Bound                []string
}

// EndHook queues on p what follows from sessions ending (the bridge ends the grants bound to
// them and queues their logout tokens); the returned function reports once p ran. It may be
// called again for the same ending (the sweep finishing an ending a crash interrupted), so it
// must be idempotent.
type EndHook func(ctx context.Context, p redis.Pipeliner, ended []Ended) func() error

// SessionInfo is one of a person's live sessions as the person sees it (me.sessions).
type SessionInfo struct {
	ID, App   string
	Assurance int
	Created   time.Time
	// LastUsed is the last refresh (or the opening): precise to the access-token lifetime.
	LastUsed time.Time
	// Device is a coarse description of the client that signed in, from its User-Agent
	// ("Android · WeChat"); never the User-Agent itself.
	Device string
}
