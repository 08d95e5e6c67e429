package graph

import (
	"encoding/base64"

	"github.com/tongban/tongban/graph/model"
	"github.com/tongban/tongban/push"
)

// maxServicePage is the largest `first` Query.services accepts.
const maxServicePage = 100

// servicesComplexity is what Query.services costs against the complexity limit, as for
// Person.activity: the fields selected plus one per service the page may hold, since a page is
// a slice of the in-memory catalog whose edges resolve from memory.
func servicesComplexity(childComplexity int, first *int, _ *string, _ *model.ServiceFilter) int {
	n := pageSize(first)
	if n < 0 {
		n = 0
	}
	return 1 + childComplexity + min(n, maxServicePage)
}

// serviceCursor is an edge's opaque cursor: the service's id, so that a page continues after
// the same service however the catalog's other entries sort around it.
func serviceCursor(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("service:" + id))
}

func parseServiceCursor(cursor string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(b) <= len("service:") || string(b[:len("service:")]) != "service:" {
		return "", false
	}
	return string(b[len("service:"):]), true
}

func serviceFilter(f *model.ServiceFilter) push.Filter {
	if f == nil {
		return push.Filter{}
	}
	return push.Filter{App: deref(f.App), Category: deref(f.Category), Text: deref(f.Text)}
}

// servicePage cuts the page of first services after the cursor out of a filtered list.
func (r *Resolver) servicePage(list []push.Service, first *int, after *string) (*model.ServiceConnection, error) {
	n := pageSize(first)
	if n < 1 || n > maxServicePage {
		return nil, newError(CodeBadUserInput, "first must be between 1 and %d", maxServicePage)
	}
	start := 0
	if after != nil {
		id, ok := parseServiceCursor(*after)
		i := -1
		for j, s := range list {
			if ok && s.ID == id {
				i = j
				break
			}
		}
		if i < 0 {
			return nil, newError(CodeBadUserInput, "after is not a cursor of this list")
		}
		start = i + 1
	}
	page := list[start:min(start+n, len(list))]
	out := &model.ServiceConnection{Edges: make([]model.ServiceEdge, len(page)), PageInfo: &model.PageInfo{HasNextPage: start+len(page) < len(list)}}
	for i, s := range page {
		out.Edges[i] = model.ServiceEdge{Cursor: serviceCursor(s.ID), Node: r.service(s)}
	}
	if len(page) > 0 {
		end := out.Edges[len(page)-1].Cursor
		out.PageInfo.EndCursor = &end
	}
	return out, nil
}

func (r *Resolver) service(s push.Service) *model.Service {
	return &model.Service{ID: s.ID, Name: s.Name, Department: s.Department, App: r.app(s.App),
		Category: s.Category, Link: s.Link, MinAssurance: s.MinAssurance}
}
