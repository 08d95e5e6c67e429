package graph

import (
	"errors"

	"github.com/tongban/tongban/graph/model"
	"github.com/tongban/tongban/internal/audit"
)

// defaultPageSize is first when a client sends null for it (the schema's default is 20 too).
const defaultPageSize = 20

func pageSize(first *int) int {
	if first == nil {
		return defaultPageSize
	}
	return *first
}

// activityComplexity is what Person.activity costs against the complexity limit: the fields
// selected plus one per entry the page may hold. The default (1 + the selection) would let a
// page of 100 cost as much as a page of 1; multiplying the selection by first, as lists of
// separately resolved items deserve, would overcharge a page that is one XREVRANGE and whose
// edges resolve from memory (a modest selection at first: 100 would exceed the limit of 1000).
func activityComplexity(childComplexity int, first *int, _ *string) int {
	n := pageSize(first)
	if n < 0 {
		n = 0
	}
	return 1 + childComplexity + min(n, audit.MaxPage)
}

// activityError maps the audit trail's refusals to BAD_USER_INPUT.
func activityError(err error) error {
	switch {
	case errors.Is(err, audit.ErrBadCursor):
		return newError(CodeBadUserInput, "after is not a cursor of this list")
	case errors.Is(err, audit.ErrPageSize):
		return newError(CodeBadUserInput, "first must be between 1 and %d", audit.MaxPage)
	}
	return err
}

func (r *Resolver) activityConnection(items []audit.Activity, hasNext bool) *model.ActivityConnection {
	out := &model.ActivityConnection{Edges: make([]model.ActivityEdge, len(items)), PageInfo: &model.PageInfo{HasNextPage: hasNext}}
	for i, a := range items {
		node := &model.Activity{ID: a.ID, Kind: string(a.Kind), At: a.At}
		if a.FromApp != "" {
			node.FromApp = r.app(a.FromApp)
		}
		if a.ToApp != "" {
			node.ToApp = r.app(a.ToApp)
		}
		if a.Reason != "" {
			node.Reason = &a.Reason
		}
		out.Edges[i] = model.ActivityEdge{Cursor: a.Cursor(), Node: node}
	}
	if len(items) > 0 {
		end := items[len(items)-1].Cursor()
		out.PageInfo.EndCursor = &end
	}
	return out
}
