package apns

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/sideshow/apns2"
)

// Options configure a Sender.
type Options struct {
	// KeyPEM is the token signing key: the contents of the .p8 file from Apple's developer
	// account (LoadKey reads and checks one).
	KeyPEM []byte
	// KeyID is the key's 10-character id, the JWT's kid.
	KeyID string
	// TeamID is the 10-character id of the team that owns the key and the apps, the JWT's iss.
	TeamID string
	// Topics maps a member app's id (Endpoint.App) to its bundle id, the apns-topic. A token
	// names a team, not an app, so APNs needs the topic on every request.
	Topics map[string]string
	// Endpoint is "production" (or empty: apns2.HostProduction), "development"
	// (apns2.HostDevelopment, for builds signed for the sandbox), or an https base URL such
	// as a fakeapns server's.
	Endpoint string
	// RootCAs, when set, is the only set of roots the TLS connection trusts: the fake's
	// certificate in tests and dev mode. Nil trusts the system's roots, as for Apple.
	RootCAs *x509.CertPool
	// HTTPClient, when set, carries the requests instead of the Sender's own HTTP/2 client; it
	// must speak HTTP/2, as APNs does. It excludes RootCAs.
	HTTPClient *http.Client
	// Now stamps apns-expiration and ages TooManyRequests backoffs; time.Now when nil. The
	// provider token's own age is apns2's and follows the system clock.
	Now func() time.Time
	// Logger hears about re-made provider tokens and refusals that point at configuration
	// (an unknown app, a topic APNs refuses, credentials); never a device token.
	// slog.Default() when nil.
	Logger *slog.Logger
	// Concurrency bounds the pushes in flight across all of the Sender's Send calls; APNs
	// multiplexes them over HTTP/2 streams. Default 64.
	Concurrency int
	// Timeout bounds one push, retries for a re-made token included. Default 10 s.
	Timeout time.Duration
}

const (
	defaultConcurrency = 64
	maxConcurrency     = 1000 // APNs' streams per connection are of this order
	defaultTimeout     = 10 * time.Second
)

// Apple's key and team ids are 10 upper-case letters and digits; checking the shape catches
// the two swapped with each other or with a bundle id.
var appleID = regexp.MustCompile(`^[A-Z0-9]{10}$`)

func (o *Options) validate() error {
	switch {
	case len(o.KeyPEM) == 0:
		return errors.New("apns: options: KeyPEM is empty; give the .p8 file's contents")
	case !appleID.MatchString(o.KeyID):
		return errors.New("apns: options: KeyID must be the key's 10-character id (upper-case letters and digits)")
	case !appleID.MatchString(o.TeamID):
		return errors.New("apns: options: TeamID must be the team's 10-character id (upper-case letters and digits)")
	case len(o.Topics) == 0:
		return errors.New("apns: options: Topics is empty; map each member app to its bundle id")
	case o.Concurrency < 0 || o.Concurrency > maxConcurrency:
		return fmt.Errorf("apns: options: Concurrency %d, want 1 to %d (0 for %d)", o.Concurrency, maxConcurrency, defaultConcurrency)
	case o.Timeout < 0:
		return errors.New("apns: options: Timeout is negative")
	case o.HTTPClient != nil && o.RootCAs != nil:
		return errors.New("apns: options: set RootCAs or HTTPClient, not both")
	}
	for app, topic := range o.Topics {
		if app == "" {
			return errors.New("apns: options: Topics has an empty app id")
		}
		if topic == "" || strings.ContainsAny(topic, " \t\r\n/") {
			return fmt.Errorf("apns: options: Topics[%q] = %q is not a bundle id", app, topic)
		}
	}
	return nil
}

// host turns Endpoint into apns2's Host: a base URL without a trailing slash.
func host(endpoint string) (string, error) {
	switch endpoint {
	case "", "production":
		return apns2.HostProduction, nil
	case "development", "sandbox":
		return apns2.HostDevelopment, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("apns: options: Endpoint %q: want \"production\", \"development\" or an https base URL", endpoint)
	}
	return "https://" + u.Host, nil
}

// newHTTPClient is the HTTP/2-only client APNs wants: one long-lived connection per host,
// multiplexed, pinged when idle so a dead connection is found before a push waits on it.
// These are the settings apns2's own client uses, on net/http's HTTP/2 instead of x/net's.
func newHTTPClient(roots *x509.CertPool) *http.Client {
	var protocols http.Protocols
	protocols.SetHTTP2(true)
	dialer := &net.Dialer{Timeout: 20 * time.Second, KeepAlive: 15 * time.Second}
	return &http.Client{Transport: &http.Transport{
		Protocols:           &protocols,
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		DialContext:         dialer.DialContext,
		TLSHandshakeTimeout: 20 * time.Second,
		HTTP2:               &http.HTTP2Config{SendPingTimeout: 15 * time.Second},
	}}
}
