package app

import (
	"fmt"

	"github.com/tongban/tongban/bridge"
	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/push/catalog"
)

// loadCatalog loads the services (事项): the configured catalog file; without one, the sample
// catalog in dev mode and none otherwise. A bad file stops start-up with every problem.
func loadCatalog(cfg *config.Config) (*catalog.Catalog, error) {
	var apps []string
	for _, a := range cfg.Apps() {
		apps = append(apps, a.ID)
	}
	var (
		c   *catalog.Catalog
		err error
	)
	switch {
	case cfg.Catalog != "":
		c, err = catalog.Load(cfg.Catalog, apps)
	case cfg.Dev:
		c, err = catalog.Dev(apps)
	default:
		c, err = catalog.Parse(nil, "(none)", apps)
	}
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	var machines []string
	for _, m := range cfg.MachineClients {
		machines = append(machines, m.ID)
	}
	source := cfg.Catalog
	if source == "" {
		source = "devdata/catalog.yaml"
	}
	if err := c.CheckWriters(source, machines); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	return c, nil
}

// catalogAdapter gives the bridge the catalog's services as a switch needs them.
type catalogAdapter struct{ c *catalog.Catalog }

var _ bridge.Catalog = catalogAdapter{}

func (a catalogAdapter) Service(id string) (bridge.Service, bool) {
	s, ok := a.c.Service(id)
	if !ok {
		return bridge.Service{}, false
	}
	return bridge.Service{ID: s.ID, App: s.App, Link: s.Link, MinAssurance: s.MinAssurance}, true
}
