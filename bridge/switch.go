package bridge

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/identity"
	"github.com/tongban/tongban/internal/audit"
	"github.com/tongban/tongban/internal/opaque"
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

// ticket is what a switch ticket stands for, stored under tk:<sha256(ticket)> for TicketTTL.
type ticket struct {
	Person, SourceApp, Session, Client, Service, Link string
	Assurance                                         int
	AuthTime                                          time.Time
	AMR                                               []string
}

func (b *Bridge) ticketKey(t string) string { return b.store.Key("tk:" + opaque.Hash(t)) }

// SwitchApp mints a ticket that opens target already signed in as the session's person.
func (b *Bridge) SwitchApp(ctx context.Context, sess identity.Session, target, serviceID string) (Switch, error) {
	c, ok := b.clients.Get(target)
	if !ok || c.Machine {
		return Switch{}, ErrUnknownClient
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
	consent, err := b.Consents.Get(ctx, sess.PersonID, target)
	if err != nil {
		return Switch{}, err
	}
	var missing []string
	for _, s := range c.consentScopes() {
		if !slices.Contains(consent.Scopes, s) {
			missing = append(missing, s)
		}
	}
	withheld := c.withheld(sess.Assurance)
	if len(missing) > 0 {
		return Switch{ConsentRequired: missing, Withheld: withheld}, nil
	}
	tk, err := opaque.Random(32)
	if err != nil {
		return Switch{}, err
	}
	tk = "tbk_" + tk
	exp := b.now().Add(TicketTTL).UTC().Truncate(time.Second)
	key := b.ticketKey(tk)
	_, err = b.store.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, map[string]any{
			"person": sess.PersonID, "source_app": sess.App, "session": sess.ID, "client": target,
			"assurance": sess.Assurance, "auth_time": sess.AuthTime.Unix(), "service": svc.ID, "link": svc.Link,
			"exp": exp.Unix(), "amr": strings.Join(sess.AMR, " "),
		})
		p.ExpireAt(ctx, key, exp)
		return nil
	})
	if err != nil {
		return Switch{}, fmt.Errorf("bridge: store ticket: %w", err)
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
	return Switch{LaunchURL: launch.String(), ExpiresAt: exp, Withheld: withheld}, nil
}

// takeTicketScript reads and deletes a ticket in one step, only when it was issued for the
// client presenting it: a ticket meant for another client is left alone, so presenting it
// elsewhere cannot burn it. KEYS[1] ticket; ARGV[1] client. Returns the ticket's fields, or nil.
var takeTicketScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'client') ~= ARGV[1] then return false end
local f = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return f
`)

// consumeTicket takes a ticket once, for client, in one round trip.
func (b *Bridge) consumeTicket(ctx context.Context, tk, client string) (ticket, bool, error) {
	if len(tk) < 10 || len(tk) > 100 {
		return ticket{}, false, nil
	}
	pairs, err := takeTicketScript.Run(ctx, b.store.Client, []string{b.ticketKey(tk)}, client).StringSlice()
	if errors.Is(err, redis.Nil) {
		return ticket{}, false, nil
	}
	if err != nil {
		return ticket{}, false, fmt.Errorf("bridge: consume ticket: %w", err)
	}
	f := make(map[string]string, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		f[pairs[i]] = pairs[i+1]
	}
	if f["person"] == "" {
		return ticket{}, false, nil
	}
	// The key's TTL removes it, but a clock that runs ahead of Redis's must not stretch a
	// ticket's life past what it was issued for.
	if exp, err := strconv.ParseInt(f["exp"], 10, 64); err != nil || !b.now().Before(time.Unix(exp, 0)) {
		return ticket{}, false, nil
	}
	assurance, _ := strconv.Atoi(f["assurance"])
	authTime, _ := strconv.ParseInt(f["auth_time"], 10, 64)
	return ticket{
		Person: f["person"], SourceApp: f["source_app"], Session: f["session"], Client: f["client"],
		Service: f["service"], Link: f["link"], Assurance: assurance, AuthTime: time.Unix(authTime, 0).UTC(),
		AMR: strings.Fields(f["amr"]),
	}, true, nil
}
