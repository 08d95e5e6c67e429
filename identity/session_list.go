package identity

import (
	"context"
	"slices"
	"strconv"
	"time"
)

// List returns the person's live sessions, newest first, as the person sees them
// (me.sessions). Entries of sessions that are gone are pruned on the way. Two round trips:
// the list, then every record at once.
func (s *Sessions) List(ctx context.Context, pid string) ([]SessionInfo, error) {
	live, err := s.liveSessions(ctx, pid, "assurance", "created", "last_used", "device")
	if err != nil {
		return nil, err
	}
	out := make([]SessionInfo, 0, len(live))
	for _, l := range slices.Backward(live) { // the list is by opening time, oldest first
		assurance, _ := strconv.Atoi(l.fields[0])
		created, _ := strconv.ParseInt(l.fields[1], 10, 64)
		used, err := strconv.ParseInt(l.fields[2], 10, 64)
		if err != nil || used < created {
			used = created // never refreshed
		}
		out = append(out, SessionInfo{
			ID: l.sid, App: l.app, Assurance: assurance,
			Created: time.Unix(created, 0).UTC(), LastUsed: time.Unix(used, 0).UTC(), Device: l.fields[3],
		})
	}
	return out, nil
}
