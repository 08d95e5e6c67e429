package identity

import (
	"context"
	"crypto/sha256"
	"encoding/base64"

	"github.com/redis/go-redis/v9"
)

// maxUpstreamSIDBytes bounds the sid claim a provider names a login with. OpenID Connect does
// not bound it; 255 is far above what providers send and keeps a hostile one from making
// Tongban hash megabytes per request.
const maxUpstreamSIDBytes = 255

// upstreamSID is the sid claim of a verified ID token, "" when it has none (or one that is not
// a usable string). Only a provider that sends back-channel logout tokens needs it stored.
func upstreamSID(p *Provider, v *verified) string {
	if !p.Config.BackchannelLogout {
		return ""
	}
	sid, _ := v.claims["sid"].(string)
	if len(sid) > maxUpstreamSIDBytes {
		return ""
	}
	return sid
}

// upstreamKey is the set of Tongban sessions opened by one login at a provider:
// ups:<b64url sha256(provider \0 sid)>. The provider's sid is hashed so that the key neither
// carries a provider's identifier in clear nor lets one shape Tongban's key space.
func (s *Service) upstreamKey(provider, sid string) string {
	sum := sha256.Sum256([]byte(provider + "\x00" + sid))
	return s.store.Key("ups:" + base64.RawURLEncoding.EncodeToString(sum[:]))
}

// queueUpstreamSession queues, on the pipeline that opens session, its entry in the index of
// the provider login sid. The index lives as long as a session could without a refresh; each
// sign-in of the same login renews it.
func (s *Service) queueUpstreamSession(ctx context.Context, p redis.Pipeliner, provider, sid, session string) {
	key := s.upstreamKey(provider, sid)
	p.SAdd(ctx, key, session)
	p.PExpire(ctx, key, s.Sessions.opts.RefreshTTL)
}
