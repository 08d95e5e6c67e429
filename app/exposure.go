package app

import (
	"log/slog"
	"net"
)

// warnIfExposed logs a warning when dev mode serves on an address other machines can reach:
// its simulated providers mint ID tokens for anyone at /dev/idp/*/mint, and its secrets are
// public. Dev mode listens on 127.0.0.1 unless listen (TONGBAN_LISTEN) says otherwise.
func (a *App) warnIfExposed(what string, addr net.Addr) {
	if !a.cfg.Dev || isLoopbackAddr(addr) {
		return
	}
	a.log.Warn("dev mode is listening beyond this machine: anyone who reaches it can mint tokens at /dev/idp/*/mint and read the dev data; set listen to 127.0.0.1:…",
		slog.String("listener", what), slog.String("addr", addr.String()))
}

func isLoopbackAddr(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}
