package config

import (
	"fmt"
	"time"
)

// Websocket bounds what GraphQL websockets may hold (graphql.websocket).
type Websocket struct {
	// MaxPerPerson is how many websockets one person may hold open, counted across replicas.
	MaxPerPerson int `yaml:"max_per_person"`
	// MaxPerIP is how many websockets one client address may hold open on one replica.
	MaxPerIP int `yaml:"max_per_ip"`
	// MaxSubscriptions is how many operations (subscriptions, and queries and mutations while
	// they run) one connection may have at once.
	MaxSubscriptions int `yaml:"max_subscriptions"`
	// InitTimeout is how long a new connection may take to send connection_init.
	InitTimeout Duration `yaml:"init_timeout"`
}

// defaultWebsocket is graphql.websocket's defaults.
func defaultWebsocket() Websocket {
	return Websocket{MaxPerPerson: 5, MaxPerIP: 100, MaxSubscriptions: 20, InitTimeout: Duration(5 * time.Second)}
}

func (c *Config) validateWebsocket(ps *Problems) {
	w := c.GraphQL.Websocket
	ps.check(
		check{"graphql.websocket.max_per_person", positive(int64(w.MaxPerPerson))},
		check{"graphql.websocket.max_per_ip", positive(int64(w.MaxPerIP))},
		check{"graphql.websocket.max_subscriptions", positive(int64(w.MaxSubscriptions))},
		check{"graphql.websocket.init_timeout", when(w.InitTimeout <= 0 || w.InitTimeout > Duration(time.Minute),
			fmt.Sprintf("must be more than 0 and at most 1m, like 5s (got %s)", w.InitTimeout.Std()))},
	)
}
