package fakeapns

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const (
	team  = "TEAM000001"
	kid   = "KEY0000001"
	topic = "cn.gov.tongban.app"
)

// devToken is a 32-byte device token in hex, different for each n.
func devToken(n int) string {
	return fmt.Sprintf("%s%08d", strings.Repeat("ab", 28), n)
}

func itoa(n int) string { return strconv.Itoa(n) }

// clock is a settable clock for WithClock.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

type fixture struct {
	s     *Server
	run   *Running
	key   *ecdsa.PrivateKey
	clock *clock
	hc    *http.Client
	jwt   string
}

func newFixture(t *testing.T, opts ...Option) *fixture {
	t.Helper()
	_, key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{}
	s := NewServer(append([]Option{WithClock(c.now)}, opts...)...)
	s.AddKey(team, kid, &key.PublicKey)
	s.AddTopics(topic)
	run := s.Start()
	t.Cleanup(run.Close)
	var protocols http.Protocols
	protocols.SetHTTP2(true)
	tr := &http.Transport{Protocols: &protocols}
	tr.TLSClientConfig = tlsConfig(run)
	t.Cleanup(tr.CloseIdleConnections)
	f := &fixture{s: s, run: run, key: key, clock: c, hc: &http.Client{Transport: tr}}
	f.jwt = signJWT(t, key, `{"alg":"ES256","kid":"`+kid+`"}`, `{"iss":"`+team+`","iat":`+itoa(int(time.Now().Unix()))+`}`)
	return f
}

// signJWT signs header.claims with ES256 as APNs wants: r‖s, 32 bytes each.
func signJWT(t testing.TB, key *ecdsa.PrivateKey, header, claims string) string {
	t.Helper()
	enc := base64.RawURLEncoding
	input := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	digest := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + enc.EncodeToString(sig)
}

type answer struct {
	status int
	header http.Header
	reason string
	ts     int64
	body   string
}

// request is one push; the zero fields get valid defaults, "-" removes a header.
type request struct {
	method, path, jwt, body string
	empty                   bool // send no body at all
	header                  map[string]string
}

// do sends rq and reads APNs' JSON answer.
func (f *fixture) do(t *testing.T, rq request) answer {
	t.Helper()
	return f.send(t, rq, true)
}

// doRaw sends rq; a body that is not JSON is kept as it is.
func (f *fixture) doRaw(t *testing.T, rq request) answer {
	t.Helper()
	return f.send(t, rq, false)
}

func (f *fixture) send(t *testing.T, rq request, strict bool) answer {
	t.Helper()
	if rq.method == "" {
		rq.method = http.MethodPost
	}
	if rq.path == "" {
		rq.path = "/3/device/" + devToken(1)
	}
	if rq.body == "" && !rq.empty {
		rq.body = `{"aps":{"alert":"hi"}}`
	}
	req, err := http.NewRequest(rq.method, f.run.URL+rq.path, strings.NewReader(rq.body))
	if err != nil {
		t.Fatal(err)
	}
	jwt := f.jwt
	if rq.jwt != "" {
		jwt = rq.jwt
	}
	if jwt != "-" {
		req.Header.Set("authorization", "bearer "+jwt)
	}
	req.Header.Set("apns-topic", topic)
	req.Header.Set("apns-push-type", "alert")
	for k, v := range rq.header {
		if v == "-" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := f.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("answered over %s", resp.Proto)
	}
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
	if len(b) > 0 {
		var e struct {
			Reason    string `json:"reason"`
			Timestamp int64  `json:"timestamp"`
		}
		if err := json.Unmarshal(b, &e); err != nil && strict {
			t.Fatalf("status %d, body not JSON: %q", resp.StatusCode, b)
		}
		a.reason, a.ts = e.Reason, e.Timestamp
	}
	return a
}

func tlsConfig(run *Running) *tls.Config { return &tls.Config{RootCAs: run.RootCAs} }

func nowUnix() int64 { return time.Now().Unix() }
