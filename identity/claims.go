package identity

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/tongban/tongban/internal/idnumber"
)

// Identity is what a verified ID token says about the citizen, in Tongban's terms: the
// provider's claim names mapped through its claim map, the assurance mapped to 1–4.
type Identity struct {
	App       string
	Subject   string
	Name      string
	Phone     string
	IDNumber  idnumber.Number // zero when the provider sent none
	Assurance int
	AuthTime  time.Time
	// AMR are the authentication methods the provider reports (RFC 8176), passed on to the
	// apps a citizen switches into.
	AMR []string
	// Expiry of the ID token, for the replay guard.
	Expiry time.Time
}

// identityFrom maps verified claims. A provider that sends an ID number that is not a valid
// one is refused: linking on a wrong number would join two people.
func (p *Provider) identityFrom(v *verified) (Identity, error) {
	c := v.claims
	id := Identity{
		App:       p.Config.ID,
		Subject:   v.subject,
		Name:      stringClaim(c, p.Config.Claims.Name),
		Phone:     stringClaim(c, p.Config.Claims.Phone),
		Assurance: p.assurance(c[p.Config.Claims.Assurance]),
		Expiry:    v.expiry,
	}
	if raw := stringClaim(c, p.Config.Claims.IDNumber); raw != "" {
		n, err := idnumber.Parse(raw)
		if err != nil {
			// The error names what is wrong; it never contains the number.
			return Identity{}, &TokenError{Reason: ReasonMalformed, Message: "the " + p.Config.Claims.IDNumber + " claim is not a valid ID number", Err: err}
		}
		id.IDNumber = n
	}
	if list, ok := c["amr"].([]any); ok {
		for _, m := range list {
			if s, ok := m.(string); ok && len(s) <= 32 && len(id.AMR) < 8 && !strings.ContainsAny(s, " \t\n") {
				id.AMR = append(id.AMR, s)
			}
		}
	}
	id.AuthTime = v.issuedAt
	if at, ok := numericDate(c["auth_time"]); ok && !at.After(v.issuedAt) {
		id.AuthTime = at
	}
	return id, nil
}

// assurance maps the provider's value to 1–4. A value the provider's table does not list is
// level 1: an unknown level must never be trusted for linking.
func (p *Provider) assurance(v any) int {
	var key string
	switch x := v.(type) {
	case string:
		key = x
	case json.Number:
		key = x.String()
	case []any: // some providers send acr values as a list; the first is the achieved one
		if len(x) > 0 {
			return p.assurance(x[0])
		}
	}
	if lvl, ok := p.Config.AssuranceLevels[key]; ok && lvl >= 1 && lvl <= 4 {
		return lvl
	}
	return 1
}

func stringClaim(c map[string]any, name string) string {
	switch v := c[name].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}
