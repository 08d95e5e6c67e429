package graph

import (
	"github.com/tongban/tongban/graph/model"
	"github.com/tongban/tongban/push/catalog"
)

// servicesComplexity is what Query.services costs against the complexity limit, as for
// Person.activity: the fields selected plus one per service the page may hold, since a page is
// a slice of the in-memory catalog whose edges resolve from memory.
func servicesComplexity(childComplexity int, first *int, _ *string, _ *model.ServiceFilter) int {
	n := pageSize(first)
	if n < 0 {
		n = 0
	}
	return 1 + childComplexity + min(n, maxPage)
}

func serviceFilter(f *model.ServiceFilter) catalog.Filter {
	if f == nil {
		return catalog.Filter{}
	}
	return catalog.Filter{App: deref(f.App), Category: deref(f.Category), Text: deref(f.Text)}
}

// servicePage cuts the page of first services after the cursor out of a filtered list. A
// cursor is the service's id, so that a page continues after the same service however the
// catalog's other entries sort around it.
func (r *Resolver) servicePage(list []catalog.Service, first *int, after *string) (*model.ServiceConnection, error) {
	page, more, err := pageOf(list, func(s catalog.Service) string { return s.ID }, "service", first, after)
	if err != nil {
		return nil, err
	}
	out := &model.ServiceConnection{Edges: make([]model.ServiceEdge, len(page)), PageInfo: &model.PageInfo{HasNextPage: more}}
	for i, s := range page {
		out.Edges[i] = model.ServiceEdge{Cursor: cursor("service", s.ID), Node: r.service(s)}
	}
	if len(page) > 0 {
		out.PageInfo.EndCursor = &out.Edges[len(page)-1].Cursor
	}
	return out, nil
}

func (r *Resolver) service(s catalog.Service) *model.Service {
	return &model.Service{ID: s.ID, Name: s.Name, Department: s.Department, App: r.app(s.App),
		Category: s.Category, Link: s.Link, MinAssurance: s.MinAssurance}
}
