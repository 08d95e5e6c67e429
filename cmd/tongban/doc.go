// Command tongban runs the Tongban service, and the few operator commands beside it.
//
//	tongban [serve]      run the service; dev mode (embedded store, simulated providers, sample
//	                     data, 127.0.0.1 only) without --config and $TONGBAN_CONFIG
//	tongban keys rotate  rotate the bridge's signing keys now, on the configured Redis
//	tongban config check [FILE]
//	                     validate a configuration (FILE or --config FILE) and list its problems
//	                     (exit 1 if any)
//	tongban version      module version, VCS revision and time, Go version
//	tongban help [cmd]   usage, or a command's (a group's: help keys lists its commands)
//
// Flags (--config FILE, -h) go before or after the command's words; TONGBAN_<PATH> environment
// variables override any key of the file. An unknown command or argument prints the usage and
// exits 2; a configuration with problems prints one line per problem. The commands hold no
// logic of their own: package app builds and runs the service.
package main
