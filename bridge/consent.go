package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/audit"
	"github.com/tongban/tongban/internal/redisx"
)

// Consent is a person's permission for a client to receive some scopes.
type Consent struct {
	Client    string
	Scopes    []string
	GrantedAt time.Time
}

// Consents keeps consents in the person's hash {p:<pid>}:consents, client -> JSON.
type Consents struct {
	store   *redisx.Store
	clients *Clients
	now     func() time.Time
	audit   *audit.Trail
	// endGrants ends the grants a person gave a client; withdrawing consent means that.
	endGrants func(ctx context.Context, pid, client string) error
	// lookup finds a client that receives people, federated ones too (Bridge.lookupReceiver);
	// nil looks in clients only.
	lookup func(ctx context.Context, id string) (*Client, bool, error)
}

func (cs *Consents) receiver(ctx context.Context, id string) (*Client, bool, error) {
	if cs.lookup != nil {
		return cs.lookup(ctx, id)
	}
	c, ok := cs.clients.Get(id)
	return c, ok && !c.Machine, nil
}

type storedConsent struct {
	Scopes    []string `json:"scopes"`
	GrantedAt int64    `json:"granted_at"`
}

func (cs *Consents) key(pid string) string { return cs.store.Key("{p:" + pid + "}:consents") }

// ErrUnknownClient means the app is not a client of the bridge (it cannot receive switches).
var ErrUnknownClient = errors.New("bridge: not an app that receives switches")

// ScopeError names scopes a client may not have.
type ScopeError struct {
	Client string
	Scopes []string
}

func (e *ScopeError) Error() string {
	return fmt.Sprintf("bridge: %s may not ask for %v", e.Client, e.Scopes)
}

// Grant adds scopes to the person's consent for a client (consent grows; revoke to shrink).
func (cs *Consents) Grant(ctx context.Context, pid, clientID string, scopes []string) (Consent, error) {
	c, ok, err := cs.receiver(ctx, clientID)
	if err != nil {
		return Consent{}, fmt.Errorf("bridge: look up client: %w", err)
	}
	if !ok {
		return Consent{}, ErrUnknownClient
	}
	var bad []string
	for _, s := range scopes {
		if !slices.Contains(c.grantableScopes(), s) {
			bad = append(bad, s)
		}
	}
	if len(bad) > 0 || len(scopes) == 0 {
		return Consent{}, &ScopeError{Client: clientID, Scopes: bad}
	}
	// Read, merge and write under WATCH, so that a concurrent grant's scopes are not lost and a
	// concurrent revoke is not undone by a grant that read the consent before it.
	var out Consent
	key := cs.key(pid)
	for attempt := 0; ; attempt++ {
		err := cs.store.Client.Watch(ctx, func(tx *redis.Tx) error {
			prev := Consent{Client: clientID}
			raw, err := tx.HGet(ctx, key, clientID).Result()
			switch {
			case errors.Is(err, redis.Nil):
			case err != nil:
				return err
			default:
				if prev, err = decodeConsent(clientID, raw); err != nil {
					return err
				}
			}
			merged := append(slices.Clone(prev.Scopes), scopes...)
			sort.Strings(merged)
			merged = slices.Compact(merged)
			out = Consent{Client: clientID, Scopes: merged, GrantedAt: cs.now().UTC().Truncate(time.Second)}
			blob, _ := json.Marshal(storedConsent{Scopes: merged, GrantedAt: out.GrantedAt.Unix()})
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.HSet(ctx, key, clientID, blob)
				return nil
			})
			return err
		}, key)
		if errors.Is(err, redis.TxFailedErr) && attempt < 10 {
			continue
		}
		if err != nil {
			return Consent{}, fmt.Errorf("bridge: store consent: %w", err)
		}
		break
	}
	_ = cs.audit.Record(ctx, audit.Activity{Kind: audit.ConsentGranted, Person: pid, ToApp: clientID, At: cs.now()})
	return out, nil
}

// Revoke removes the person's consent for a client; it reports whether there was one. Every
// grant the person gave the client ends with it: access tokens stop working, refresh tokens
// are invalid_grant.
func (cs *Consents) Revoke(ctx context.Context, pid, clientID string) (bool, error) {
	n, err := cs.store.Client.HDel(ctx, cs.key(pid), clientID).Result()
	if err != nil {
		return false, fmt.Errorf("bridge: revoke consent: %w", err)
	}
	if cs.endGrants != nil {
		if err := cs.endGrants(ctx, pid, clientID); err != nil {
			return n > 0, err
		}
	}
	if n > 0 {
		_ = cs.audit.Record(ctx, audit.Activity{Kind: audit.ConsentRevoked, Person: pid, ToApp: clientID, At: cs.now()})
	}
	return n > 0, nil
}

// Get returns the consent for one client; a zero Consent (no scopes) when there is none.
func (cs *Consents) Get(ctx context.Context, pid, clientID string) (Consent, error) {
	return cs.answer(clientID, cs.store.Client.HGet(ctx, cs.key(pid), clientID))
}

// queueGet queues Get's read on p; the returned function answers once p has run.
func (cs *Consents) queueGet(ctx context.Context, p redis.Pipeliner, pid, clientID string) func() (Consent, error) {
	cmd := p.HGet(ctx, cs.key(pid), clientID)
	return func() (Consent, error) { return cs.answer(clientID, cmd) }
}

func (cs *Consents) answer(clientID string, cmd *redis.StringCmd) (Consent, error) {
	raw, err := cmd.Result()
	if errors.Is(err, redis.Nil) {
		return Consent{Client: clientID}, nil
	}
	if err != nil {
		return Consent{}, fmt.Errorf("bridge: read consent: %w", err)
	}
	return decodeConsent(clientID, raw)
}

// List returns all the person's consents, by client id.
func (cs *Consents) List(ctx context.Context, pid string) ([]Consent, error) {
	all, err := cs.store.Client.HGetAll(ctx, cs.key(pid)).Result()
	if err != nil {
		return nil, fmt.Errorf("bridge: read consents: %w", err)
	}
	out := make([]Consent, 0, len(all))
	for id, raw := range all {
		c, err := decodeConsent(id, raw)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Client < out[j].Client })
	return out, nil
}

func decodeConsent(clientID, raw string) (Consent, error) {
	var s storedConsent
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return Consent{}, fmt.Errorf("bridge: corrupt consent for %s: %w", clientID, err)
	}
	return Consent{Client: clientID, Scopes: s.Scopes, GrantedAt: time.Unix(s.GrantedAt, 0).UTC()}, nil
}

// holds reports whether the consent still stands for a grant of scopes to client c: it
// covers them and, for a client that needs consent at all, it exists. covers alone would let
// a code or grant that holds only openid outlive a withdrawal, since openid needs no consent
// of its own; but a withdrawal takes back the whole app.
func (c Consent) holds(client *Client, scopes []string) bool {
	return c.covers(scopes) && (len(client.consentScopes()) == 0 || !c.GrantedAt.IsZero())
}

// covers reports whether consent includes every scope that needs consent. offline_access is not
// one of them here: a grant keeps it only when the consent listed it at redemption
// (consentedScopes), and consent only grows until it is revoked, which ends the grant.
func (c Consent) covers(scopes []string) bool {
	for _, s := range scopes {
		if s != "openid" && s != "offline_access" && !slices.Contains(c.Scopes, s) {
			return false
		}
	}
	return true
}

// DescribeScope is what consenting to scope means for the person, as the consent shown to them
// says it, in Chinese (lang "zh", the default) or English ("en"): app is the client's display
// name. A scope it does not know is returned as it is.
func DescribeScope(scope, app, lang string) string {
	en := lang == "en"
	switch scope {
	case "profile":
		if en {
			return "your name"
		}
		return "您的姓名"
	case "phone":
		if en {
			return "your phone number"
		}
		return "您的手机号码"
	case "id_number":
		if en {
			return "your ID card number"
		}
		return "您的身份证号码"
	case "offline_access":
		if en {
			return "stays connected to " + app + " after you sign out of Tongban, until you disconnect it"
		}
		return "退出通办后仍与" + app + "保持连接，直到您断开连接"
	}
	return scope
}
