package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/identity"
	"github.com/tongban/tongban/internal/audit"
	"github.com/tongban/tongban/internal/opaque"
	"github.com/tongban/tongban/internal/redisx"
)

// Switch is the answer to switchApp: either the scopes to ask the person for first, or a
// one-time launch URL.
type Switch struct {
	ConsentRequired []string
	LaunchURL       string
	ExpiresAt       time.Time
	// Withheld are the target's scopes this session's login does not release, consent or not
	// (id_number below the target's min_assurance_for_id_number; see releasable).
	Withheld []string
	// Optional are scopes the person may consent to but need not for the switch: offline_access,
	// when the target may have it and the consent lacks it (DescribeScope says what it means).
	Optional []string
}

// Errors of SwitchApp that callers map to codes.
var (
	ErrUnknownService = errors.New("bridge: no such service")
	ErrSameApp        = errors.New("bridge: the citizen is already in that app")
)

// AssuranceError is a service that needs a stronger login than the session's. A switch never
// raises assurance: the citizen signs in again at the needed level.
type AssuranceError struct {
	Need, Have int
}

func (e *AssuranceError) Error() string {
	return fmt.Sprintf("bridge: the service needs assurance %d, the session has %d", e.Need, e.Have)
}

// ticket is what a switch ticket stands for, stored as JSON under tk:<sha256(client, ticket)>
// for TicketTTL. The key names the client it was issued for, so the ticket is taken by one
// script on its key (takeTicketScript): presented by another client it names another key, and
// is left alone.
type ticket struct {
	Person    string   `json:"person"`
	SourceApp string   `json:"source_app"`
	Session   string   `json:"session"`
	Client    string   `json:"client"`
	Service   string   `json:"service,omitempty"`
	Link      string   `json:"link,omitempty"`
	Assurance int      `json:"assurance"`
	AuthTime  int64    `json:"auth_time"`
	Exp       int64    `json:"exp"`
	AMR       []string `json:"amr,omitempty"`
}

func (b *Bridge) ticketKey(client, t string) string {
	return b.store.Key("tk:" + opaque.Hash(client+"\x00"+t))
}

// SwitchApp mints a ticket that opens target already signed in as the session's person.
func (b *Bridge) SwitchApp(ctx context.Context, sess identity.Session, target, serviceID string) (Switch, error) {
	c, ok, err := b.lookupReceiver(ctx, target)
	if err != nil {
		return Switch{}, fmt.Errorf("bridge: look up target: %w", err)
	}
	if !ok {
		return Switch{}, ErrUnknownClient
	}
	if c.InitiateLoginURI == "" {
		// A federated client's metadata may leave it out; configuration requires it.
		return Switch{}, fmt.Errorf("%w: %s publishes no initiate_login_uri", ErrUnknownClient, target)
	}
	if target == sess.App {
		return Switch{}, ErrSameApp
	}
	var svc Service
	if serviceID != "" {
		if b.catalog != nil {
			svc, ok = b.catalog.Service(serviceID)
		}
		// A service of another app would put that app's deep link into the target's launch.
		if b.catalog == nil || !ok || svc.App != target {
			return Switch{}, ErrUnknownService
		}
		if svc.MinAssurance > sess.Assurance {
			return Switch{}, &AssuranceError{Need: svc.MinAssurance, Have: sess.Assurance}
		}
	}
	tk, err := opaque.Random(32)
	if err != nil {
		return Switch{}, err
	}
	tk = "tbk_" + tk
	exp := b.now().Add(TicketTTL).UTC().Truncate(time.Second)
	key := b.ticketKey(target, tk)
	blob, err := json.Marshal(ticket{
		Person: sess.PersonID, SourceApp: sess.App, Session: sess.ID, Client: target, Service: svc.ID, Link: svc.Link,
		Assurance: sess.Assurance, AuthTime: sess.AuthTime.Unix(), Exp: exp.Unix(), AMR: sess.AMR,
	})
	if err != nil {
		return Switch{}, fmt.Errorf("bridge: encode ticket: %w", err)
	}
	// The consent is read in the round trip that stores the ticket. A ticket stored for a
	// person whose consent turns out short is deleted before anyone saw it; and a ticket only
	// opens a code flow whose scopes the token endpoint takes from the consent as it is then.
	var (
		consent func() (Consent, error)
		store   *redis.StatusCmd
	)
	_, _ = b.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		consent = b.Consents.queueGet(ctx, p, sess.PersonID, target)
		store = p.SetArgs(ctx, key, blob, redis.SetArgs{ExpireAt: exp})
		return nil
	}) // each answer below reports its own command's error
	cons, err := consent()
	if err == nil {
		err = store.Err()
	}
	if err != nil {
		_ = b.store.Client.Del(context.WithoutCancel(ctx), key).Err() // best effort: nobody holds the ticket
		return Switch{}, fmt.Errorf("bridge: store ticket: %w", err)
	}
	var missing []string
	for _, s := range c.consentScopes() {
		if !slices.Contains(cons.Scopes, s) {
			missing = append(missing, s)
		}
	}
	withheld := c.withheld(sess.Assurance)
	var optional []string
	if slices.Contains(c.Scopes, "offline_access") && !slices.Contains(cons.Scopes, "offline_access") {
		optional = []string{"offline_access"}
	}
	if len(missing) > 0 {
		if err := b.store.Client.Del(context.WithoutCancel(ctx), key).Err(); err != nil {
			return Switch{}, fmt.Errorf("bridge: drop unneeded ticket: %w", err)
		}
		return Switch{ConsentRequired: missing, Withheld: withheld, Optional: optional}, nil
	}
	q := url.Values{"iss": {b.issuer}, "login_hint": {tk}}
	if svc.Link != "" {
		q.Set("target_link_uri", svc.Link)
	}
	launch, err := url.Parse(c.InitiateLoginURI)
	if err != nil {
		return Switch{}, fmt.Errorf("bridge: initiate_login_uri of %s: %w", target, err)
	}
	merged := launch.Query()
	for k, v := range q {
		merged[k] = v
	}
	launch.RawQuery = merged.Encode()
	_ = b.audit.Record(ctx, audit.Activity{Kind: audit.SwitchIssued, Person: sess.PersonID, FromApp: sess.App, ToApp: target, At: b.now()})
	return Switch{LaunchURL: launch.String(), ExpiresAt: exp, Withheld: withheld, Optional: optional}, nil
}

// takeTicketScript takes a ticket once. It marks the ticket taken by its taker, a claimant fresh
// to the authorize request, rather than deleting it (as GETDEL did): a take sent twice (its
// reply timed out after it ran, and the client or a cluster redirect sent it again) finds its
// own mark and gets the ticket again, where after GETDEL it found nothing and the citizen's
// switch failed. Anyone else finds the ticket taken. A taken ticket lives out its TTL (60 s at
// most), marked, and is never handed to another taker.
//
// KEYS[1] tk:…; ARGV[1] the taker. Returns the ticket's JSON, or nil.
var takeTicketScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return false end
local mark = 'taken:' .. ARGV[1] .. '\n'
if string.sub(v, 1, 6) ~= 'taken:' then
  redis.call('SET', KEYS[1], mark .. v, 'KEEPTTL')
  return v
end
if string.sub(v, 1, #mark) == mark then return string.sub(v, #mark + 1) end
return false
`)

// consumeTicket takes a ticket once, for client, in one round trip (takeTicketScript: the key
// names the client, so a ticket meant for another client is not found, and not burned).
func (b *Bridge) consumeTicket(ctx context.Context, tk, client string) (ticket, bool, error) {
	if len(tk) < 10 || len(tk) > 100 {
		return ticket{}, false, nil
	}
	raw, err := takeTicketScript.Run(ctx, b.store.Client, []string{b.ticketKey(client, tk)}, redisx.Claimant(ctx)).Text()
	if errors.Is(err, redis.Nil) {
		return ticket{}, false, nil
	}
	if err != nil {
		return ticket{}, false, fmt.Errorf("bridge: consume ticket: %w", err)
	}
	var t ticket
	if err := json.Unmarshal([]byte(raw), &t); err != nil {
		return ticket{}, false, fmt.Errorf("bridge: corrupt ticket: %w", err)
	}
	if t.Person == "" || t.Client != client {
		return ticket{}, false, nil
	}
	// The key's TTL removes it, but a clock that runs ahead of Redis's must not stretch a
	// ticket's life past what it was issued for.
	if !b.now().Before(time.Unix(t.Exp, 0)) {
		return ticket{}, false, nil
	}
	return t, true, nil
}
