package fakeapns

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
)

// Running is the server listening on loopback over TLS and HTTP/2, as APNs listens.
type Running struct {
	// URL is the base URL, "https://127.0.0.1:<port>": the apns2 client's Host.
	URL string
	// RootCAs trusts the server's self-signed certificate (valid for 127.0.0.1, ::1 and
	// example.com); give it to the client's tls.Config.
	RootCAs *x509.CertPool
	ts      *httptest.Server
}

// Start serves the Handler on a loopback port over TLS with HTTP/2 alone (ALPN "h2"); a
// request that arrives as HTTP/1 is answered 505, since APNs speaks only HTTP/2. Close the
// Running when done.
func (s *Server) Start() *Running {
	h := s.Handler()
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			http.Error(w, "APNs requires HTTP/2", http.StatusHTTPVersionNotSupported)
			return
		}
		h.ServeHTTP(w, r)
	}))
	ts.EnableHTTP2 = true
	ts.StartTLS()
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	return &Running{URL: ts.URL, RootCAs: pool, ts: ts}
}

// Close stops the listener and waits for requests in flight.
func (r *Running) Close() { r.ts.Close() }

// GenerateKey makes a team signing key like the one Apple's developer account issues: a P-256
// key, returned as the .p8 file's contents (PEM "PRIVATE KEY", PKCS #8) and as the key itself
// (register its Public() with AddKey). Tests and dev mode use it; Apple's own keys are never
// needed to talk to the fake.
func GenerateKey() (p8 []byte, key *ecdsa.PrivateKey, err error) {
	key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), key, nil
}
