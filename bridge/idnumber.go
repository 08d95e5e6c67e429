package bridge

import "slices"

// DefaultMinAssuranceForIDNumber is the assurance a login needs before a client receives the
// person's ID number, when its configuration does not say (clients[].min_assurance_for_id_number).
const DefaultMinAssuranceForIDNumber = 3

// releasable is scopes without id_number when the login's assurance is below what c requires
// for it, whatever the person consented to: an ID number from an unverified login (assurance 1
// is a phone number or a password) would hand a partner a number nobody checked belongs to the
// person holding the session. The other scopes are kept.
//
// It is applied where a grant gets its scopes (the authorization code, a token exchange), so
// the token response's scope, refreshes and introspection say what was left out, and again
// where claims are released (ID token, userinfo), so a grant stored before the client's level
// was raised releases no more than a new one would.
func (c *Client) releasable(scopes []string, assurance int) []string {
	if assurance >= c.minIDAssurance() || !slices.Contains(scopes, "id_number") {
		return scopes
	}
	return slices.DeleteFunc(slices.Clone(scopes), func(s string) bool { return s == "id_number" })
}

func (c *Client) minIDAssurance() int {
	if c.MinAssuranceForIDNumber < 1 {
		return DefaultMinAssuranceForIDNumber
	}
	return c.MinAssuranceForIDNumber
}

// withheld are the client's scopes that a login at assurance does not release, whatever the
// person consents to, so that a switch can say so before the person consents.
func (c *Client) withheld(assurance int) []string {
	return slices.DeleteFunc(slices.Clone(c.Scopes), func(s string) bool {
		return slices.Contains(c.releasable([]string{s}, assurance), s)
	})
}
