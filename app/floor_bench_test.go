package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
)

// floor is what the parts of a flow that no implementation can avoid cost on this machine,
// measured in the same run, with the same client, concurrency and store as the flow: a bare
// net/http round trip, a GraphQL request through Tongban's endpoint that resolves nothing,
// and one Redis round trip. Rates are operations per second.
//
// The sign-in and switch targets compare a whole flow with its cryptography alone. Where one
// HTTP or Redis round trip costs as much as a signature (loopback on two shared cores does),
// the flow's unavoidable round trips bound the ratio below 1 however little Tongban does
// around them; ceiling says how far below, so a run's ratio can be read against what is
// reachable here, not only against the target.
type floor struct {
	http, graphql, redis float64
}

// measureFloor measures the floor with n operations of each kind at the given concurrency.
func measureFloor(b *testing.B, h *harness, client *http.Client, concurrency, n int) floor {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	// A JSON answer the size of a sign-in's, to a body the size of a sign-in's.
	answer := bytes.Repeat([]byte("x"), 400)
	bare := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	})}
	go func() { _ = bare.Serve(ln) }()
	defer bare.Close()
	body := bytes.Repeat([]byte("x"), 1200)
	items := make([]string, n)
	for i := range items {
		items[i] = strconv.Itoa(i)
	}
	ctx := context.Background()
	return floor{
		http: drive(concurrency, items, func(string) error { return postOK(client, "http://"+ln.Addr().String()+"/", body) }).rate,
		graphql: drive(concurrency, items, func(string) error {
			return postOK(client, h.url+"/graphql", []byte(`{"query":"{ __typename }"}`))
		}).rate,
		redis: drive(concurrency, items, func(string) error { return h.app.Store.Client.Ping(ctx).Err() }).rate,
	}
}

// ceiling is the ratio a flow would reach if it did nothing but graphql GraphQL requests, http
// bare HTTP requests, redis Redis round trips and the crypto operation it is compared with,
// whose bare rate is crypto.
func (f floor) ceiling(graphql, http, redis int, crypto float64) float64 {
	perFlow := float64(graphql)/f.graphql + float64(http)/f.http + float64(redis)/f.redis + 1/crypto
	return (1 / perFlow) / crypto
}

func (f floor) String() string {
	return fmt.Sprintf("bare HTTP %.0f/s, GraphQL { __typename } %.0f/s, Redis round trip %.0f/s", f.http, f.graphql, f.redis)
}

// postOK posts a JSON body, reads the answer to its end (so the connection is reused) and
// wants 200.
func postOK(client *http.Client, url string, body []byte) error {
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}
