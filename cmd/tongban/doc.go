// Command tongban runs the Tongban service.
//
//	tongban                       dev mode on 127.0.0.1:8080: embedded store, GraphiQL, sample data
//	tongban --config tongban.yaml whatever the file says; TONGBAN_<PATH> overrides any key
//	tongban keys rotate           rotate the bridge's signing keys on the configured store now
//
// It parses flags, loads and validates the configuration (printing one line per problem),
// builds the app with package app and serves until SIGINT or SIGTERM, then shuts down
// gracefully. It holds no logic of its own.
package main
