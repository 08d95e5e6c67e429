package config

// The member apps and machine clients: providers (configured, or known by entity id), clients
// that receive switches, and the data platforms' and service owners' machine clients.

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

func (c *Config) validateProviders(ps *Problems) {
	seen := map[string]int{}
	for i, p := range c.Providers {
		key := func(k string) string { return fmt.Sprintf("providers[%d].%s", i, k) }
		ps.check(
			check{key("id"), appID(p.ID, "providers", seen, i)},
			check{key("name"), required(p.Name, "")},
			check{key("region"), required(p.Region, "")},
			check{key("scopes"), when(!slices.Contains(p.Scopes, "openid"), "must contain openid")},
		)
		if p.EntityID != "" {
			// Known by entity id: issuer, endpoints and keys come from its trust chain, and
			// Tongban registers with it automatically (its entity id as client_id, private_key_jwt).
			fed := "with entity_id the provider's trust chain supplies it; remove it"
			ps.check(
				check{key("entity_id"), httpsURL(p.EntityID, true)},
				check{key("issuer"), when(p.Issuer != "", fed)},
				check{key("client_id"), when(p.ClientID != "", "with entity_id Tongban's entity id is the client_id; remove it")},
				check{key("client_secret"), when(p.ClientSecret != "" || p.ClientSecretFile != "",
					"with entity_id Tongban authenticates with private_key_jwt (its relying-party key); remove it")},
				check{key("entity_id"), when(len(c.Federation.TrustAnchors) == 0 && !c.Dev,
					"needs federation.trust_anchors to resolve the provider's trust chain")},
			)
		} else {
			ps.check(
				check{key("issuer"), required(p.Issuer, httpsURL(p.Issuer, true))},
				check{key("client_id"), required(p.ClientID, "")},
				// The simulated providers of dev mode take any client secret.
				check{key("client_secret"), when(!c.Dev && p.ClientSecret == "",
					"missing secret (set client_secret or client_secret_file)")},
				check{key("algorithms"), when(len(p.Algorithms) == 0, "at least one is required, like [RS256]")},
			)
		}
		for j, alg := range p.Algorithms {
			ps.check(check{fmt.Sprintf("providers[%d].algorithms[%d]", i, j), algorithm(alg)})
		}
		for _, name := range sortedKeys(p.AssuranceLevels) {
			ps.check(check{fmt.Sprintf("providers[%d].assurance_levels[%q]", i, name),
				assuranceLevel(p.AssuranceLevels[name])})
		}
		ps.check(check{key("auto_link_min_assurance"), assuranceLevel(p.AutoLinkMinAssurance)})
		// Without a list, beginSignIn would take any https URI, and the provider's own matching
		// would be all that stands between a phishing redirect URI and a citizen's code.
		ps.check(check{key("redirect_uris"), when(!c.Dev && len(p.RedirectURIs) == 0,
			"at least one is required outside dev mode (exact match): the callbacks where member apps receive the code")})
		for j, u := range p.RedirectURIs {
			ps.check(check{fmt.Sprintf("providers[%d].redirect_uris[%d]", i, j), required(u, httpsURL(u, false))})
		}
	}
}

func (c *Config) validateClients(ps *Problems) {
	providers := map[string]bool{}
	for _, p := range c.Providers {
		providers[p.ID] = true
	}
	seen := map[string]int{}
	for i, cl := range c.Clients {
		prefix := fmt.Sprintf("clients[%d]", i)
		ps.check(check{prefix + ".id", appID(cl.ID, "clients", seen, i)})
		// The API shows every app's name and region (Apps). An app that is also a provider takes
		// them from the provider entry, which requires them; any other app has only this entry.
		if !providers[cl.ID] {
			missing := fmt.Sprintf("required: no provider has the id %q to supply it", cl.ID)
			ps.check(
				check{prefix + ".name", when(cl.Name == "", missing)},
				check{prefix + ".region", when(cl.Region == "", missing)},
			)
		}
		ps.check(secretChecks(prefix, cl.Secret, cl.SecretSHA256, cl.SecretFile)...)
		ps.check(check{prefix + ".redirect_uris", when(len(cl.RedirectURIs) == 0,
			"at least one is required (exact match)")})
		for j, u := range cl.RedirectURIs {
			ps.check(check{fmt.Sprintf("%s.redirect_uris[%d]", prefix, j), required(u, httpsURL(u, false))})
		}
		ps.check(
			check{prefix + ".initiate_login_uri", required(cl.InitiateLoginURI, httpsURL(cl.InitiateLoginURI, false))},
			check{prefix + ".scopes", when(!slices.Contains(cl.Scopes, "openid"), "must contain openid")},
		)
		for j, s := range cl.Scopes {
			ps.check(check{fmt.Sprintf("%s.scopes[%d]", prefix, j), oneOf(s, clientScopes)})
		}
		ps.check(check{prefix + ".subject_type", oneOf(cl.SubjectType, subjectTypes)})
		ps.check(check{prefix + ".id_token_signed_response_alg", oneOf(cl.IDTokenAlg, idTokenAlgs)})
		ps.check(check{prefix + ".min_assurance_for_id_number", assuranceLevel(cl.MinAssuranceForIDNumber)})
		// OpenID Connect Back-Channel Logout 1.0 §2.2: absolute, no fragment; a query is allowed.
		ps.check(check{prefix + ".backchannel_logout_uri", optional(cl.BackchannelLogoutURI, httpsURL(cl.BackchannelLogoutURI, false))})
		for j, u := range cl.PostLogoutRedirectURIs {
			ps.check(check{fmt.Sprintf("%s.post_logout_redirect_uris[%d]", prefix, j), required(u, httpsURL(u, false))})
		}
	}
}

// MaxSessionsPerPerson bounds sessions.max_per_person: me.sessions lists them all, and its
// query cost assumes this many.
const MaxSessionsPerPerson = 100

func (c *Config) validateLogout(ps *Problems) {
	ps.check(
		check{"logout.workers", when(c.Logout.Workers < 1 || c.Logout.Workers > 64,
			fmt.Sprintf("must be from 1 to 64 (got %d)", c.Logout.Workers))},
		check{"logout.max_attempts", when(c.Logout.MaxAttempts < 1 || c.Logout.MaxAttempts > 20,
			fmt.Sprintf("must be from 1 to 20 (got %d)", c.Logout.MaxAttempts))},
		check{"logout.timeout", when(c.Logout.Timeout < Duration(time.Second) || c.Logout.Timeout > Duration(30*time.Second),
			fmt.Sprintf("must be from 1s to 30s, like 5s (got %s)", c.Logout.Timeout.Std()))},
	)
}

func (c *Config) validateMachineClients(ps *Problems) {
	clients := map[string]int{}
	for i, cl := range c.Clients {
		if _, dup := clients[cl.ID]; !dup {
			clients[cl.ID] = i
		}
	}
	seen := map[string]int{}
	for i, m := range c.MachineClients {
		prefix := fmt.Sprintf("machine_clients[%d]", i)
		idProblem := appID(m.ID, "machine_clients", seen, i)
		if j, clash := clients[m.ID]; clash && idProblem == "" {
			idProblem = fmt.Sprintf("%q is already a client id (clients[%d]); both authenticate at the same token endpoint", m.ID, j)
		}
		ps.check(check{prefix + ".id", idProblem})
		ps.check(secretChecks(prefix, m.Secret, m.SecretSHA256, m.SecretFile)...)
		ps.check(check{prefix + ".scopes", when(len(m.Scopes) == 0, "at least one of events, rules, federation is required")})
		for j, s := range m.Scopes {
			ps.check(check{fmt.Sprintf("%s.scopes[%d]", prefix, j), oneOf(s, machineScopes)})
		}
		ps.check(check{prefix + ".departments", when(slices.Contains(m.Scopes, "rules") && len(m.Departments) == 0,
			"required with scope rules: the departments whose rules this client may manage")})
		for j, d := range m.Departments {
			ps.check(check{fmt.Sprintf("%s.departments[%d]", prefix, j), required(strings.TrimSpace(d), "")})
		}
	}
}
