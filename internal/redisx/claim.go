package redisx

import (
	"context"

	"github.com/tongban/tongban/internal/reqid"
)

// Claimant names one attempt at a claim (SET key claimant NX GET, or a script that marks what it
// takes): fresh for each attempt, so that the only claim that finds it is a second send of the
// same attempt, whose first reply was lost; that one is recognised as the attempt's own, never
// as a conflict or a replay. The request id after it says, in the store, which request made the
// claim. It is not a secret (it never leaves the store), only unique.
func Claimant(ctx context.Context) string {
	c := reqid.New()
	if id := reqid.From(ctx); id != "" {
		c += "/" + id
	}
	return c
}
