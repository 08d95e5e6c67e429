package graph

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
)

// memConn is a websocket connection in memory: the client's messages are queued, the server's
// writes and close recorded.
type memConn struct {
	subprotocol string
	in          [][]byte

	mu        sync.Mutex
	written   []map[string]any
	closeCode int
}

func (c *memConn) NextReader() (int, io.Reader, error) {
	if len(c.in) == 0 {
		return 0, nil, transport.ErrWebsocketClosed
	}
	m := c.in[0]
	c.in = c.in[1:]
	return 1, bytes.NewReader(m), nil
}

func (c *memConn) WriteJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	c.mu.Lock()
	c.written = append(c.written, m)
	c.mu.Unlock()
	return nil
}

func (c *memConn) WriteClose(code int, _ string) error {
	c.mu.Lock()
	c.closeCode = code
	c.mu.Unlock()
	return nil
}

func (c *memConn) Close() error        { return nil }
func (c *memConn) Subprotocol() string { return c.subprotocol }

// gqlgenMessage has the shape of gqlgen's own message structs, which are unexported.
type gqlgenMessage struct {
	Payload json.RawMessage `json:"payload,omitempty"`
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
}

// FuzzGuardedConn feeds arbitrary client messages through the guard. Whatever arrives, nothing
// panics, no more operations run than the cap, every message passed on is the one received,
// and a refusal names the operation it refuses.
func FuzzGuardedConn(f *testing.F) {
	for _, seed := range []string{
		`{"type":"connection_init"}` + "\n" + `{"type":"subscribe","id":"1","payload":{"query":"{ apps { id } }"}}`,
		`{"type":"connection_init"}` + "\n" + `{"type":"connection_init"}`,
		`{"type":"connection_init"}` + "\n" + `{"type":"subscribe","id":"a"}` + "\n" + `{"type":"subscribe","id":"a"}`,
		`{"type":"connection_init"}` + "\n" + strings.Repeat(`{"type":"subscribe","id":"x`+"\n", 3),
		`{"type":"start","id":"1"}` + "\n" + `{"type":"stop","id":"1"}`,
		`not json` + "\n" + `{"type":5}` + "\n" + `{"id":{"a":1}}`,
		`{"type":"subscribe","id":"` + strings.Repeat("é", 200) + `"}`,
	} {
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, script string, modern bool) {
		const max = 3
		mc := &memConn{subprotocol: "graphql-ws"}
		if modern {
			mc.subprotocol = "graphql-transport-ws"
		}
		for line := range strings.SplitSeq(script, "\n") {
			mc.in = append(mc.in, []byte(line))
		}
		sent := append([][]byte(nil), mc.in...)
		wc := newWSConn(WebsocketLimits{MaxOperations: max, InitTimeout: time.Hour}.withDefaults())
		defer wc.release()
		g := wc.attach(mc)
		for {
			_, r, err := g.NextReader()
			if err != nil {
				if !errors.Is(err, transport.ErrWebsocketClosed) {
					t.Fatalf("NextReader: %v", err)
				}
				break
			}
			got, _ := io.ReadAll(r)
			if !containsMessage(sent, got) {
				t.Fatalf("passed on %q, which the client never sent", got)
			}
			var m struct{ ID, Type string }
			if json.Unmarshal(got, &m) == nil && (m.Type == "subscribe" || m.Type == "start") && m.ID != "" && len(m.ID)%2 == 0 {
				// The server ends some operations, as gqlgen would.
				_ = g.WriteJSON(&gqlgenMessage{ID: m.ID, Type: "complete"})
			}
			wc.mu.Lock()
			n := len(wc.ops)
			wc.mu.Unlock()
			if n > max {
				t.Fatalf("%d operations running, over the cap of %d", n, max)
			}
		}
		for _, w := range mc.written {
			if w["type"] == "error" {
				if id, _ := w["id"].(string); id == "" && !containsID(sent, "") {
					t.Errorf("a refusal without the operation's id: %v", w)
				}
			}
		}
		if mc.closeCode != 0 && mc.closeCode < 4000 {
			t.Errorf("closed with %d, not a graphql-transport-ws code", mc.closeCode)
		}
	})
}

func containsMessage(sent [][]byte, m []byte) bool {
	for _, s := range sent {
		if bytes.Equal(s, m) {
			return true
		}
	}
	return false
}

func containsID(sent [][]byte, id string) bool {
	for _, s := range sent {
		var m struct{ ID string }
		if json.Unmarshal(s, &m) == nil && m.ID == id {
			return true
		}
	}
	return false
}
