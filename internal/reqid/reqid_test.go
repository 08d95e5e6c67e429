package reqid

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

// safeID reports whether id is what Accept may return: 1 to 64 characters of [A-Za-z0-9._-].
func safeID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	return strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == ""
}

func TestAccept(t *testing.T) {
	tests := []struct {
		name     string
		incoming string
		kept     bool
	}{
		{"uuid", "0b6f7c1e-5a4b-4c3d-9e8f-0123456789ab", true},
		{"dotted and underscored", "edge_01.req-42", true},
		{"64 characters", strings.Repeat("a", 64), true},

		{"empty", "", false},
		{"65 characters", strings.Repeat("a", 65), false},
		{"space", "req 42", false},
		{"newline (log injection)", "req42\n{\"level\":\"ERROR\"}", false},
		{"quote", `req"42`, false},
		{"slash", "req/42", false},
		{"non-ASCII letter", "réq42", false},
		{"NUL", "req\x0042", false},
		{"equals sign (AWS trace header)", "Root=1-67891233-abcdef012345678912345678", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tt.incoming != "" {
				r.Header[Header] = []string{tt.incoming}
			}
			got := Accept(r)
			if tt.kept {
				if got != tt.incoming {
					t.Errorf("Accept replaced %q with %q", tt.incoming, got)
				}
				return
			}
			if got == tt.incoming {
				t.Errorf("Accept kept %q", tt.incoming)
			}
			if len(got) != 24 || strings.Trim(got, "0123456789abcdef") != "" {
				t.Errorf("replacement %q is not a fresh id", got)
			}
		})
	}
}

func TestNewIsFreshEachTime(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := New()
		if !safeID(id) || len(id) != 24 {
			t.Fatalf("New() = %q", id)
		}
		if seen[id] {
			t.Fatalf("New() repeated %q", id)
		}
		seen[id] = true
	}
}

func FuzzAccept(f *testing.F) {
	for _, seed := range []string{"abc-123", "", strings.Repeat("x", 65), "a b", "\n", "é", "ok.id_1"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, incoming string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header[Header] = []string{incoming}
		got := Accept(r)
		if !safeID(got) {
			t.Fatalf("Accept(%q) = %q, which is not safe to log", incoming, got)
		}
		if safeID(incoming) && got != incoming {
			t.Fatalf("Accept(%q) = %q replaced a safe id", incoming, got)
		}
	})
}

// logLine logs one record through a JSON handler wrapped in Handler and decodes it.
func logLine(t *testing.T, log func(*slog.Logger)) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	log(slog.New(Handler{slog.NewJSONHandler(&buf, nil)}))
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("decode %q: %v", buf.String(), err)
	}
	return rec
}

func TestHandler(t *testing.T) {
	ctx := With(context.Background(), "req-1")
	if got := From(ctx); got != "req-1" {
		t.Fatalf("From = %q", got)
	}
	if got := From(context.Background()); got != "" {
		t.Fatalf("From(empty) = %q", got)
	}

	t.Run("context with an id", func(t *testing.T) {
		rec := logLine(t, func(l *slog.Logger) { l.InfoContext(ctx, "hello", "k", "v") })
		if rec["request_id"] != "req-1" || rec["k"] != "v" || rec["msg"] != "hello" {
			t.Errorf("record = %v", rec)
		}
	})
	t.Run("context without an id", func(t *testing.T) {
		rec := logLine(t, func(l *slog.Logger) { l.InfoContext(context.Background(), "hello") })
		if _, ok := rec["request_id"]; ok {
			t.Errorf("record = %v, want no request_id", rec)
		}
	})
	t.Run("logger without a context", func(t *testing.T) {
		rec := logLine(t, func(l *slog.Logger) { l.Info("hello") })
		if _, ok := rec["request_id"]; ok {
			t.Errorf("record = %v, want no request_id", rec)
		}
	})
	t.Run("after WithAttrs", func(t *testing.T) {
		rec := logLine(t, func(l *slog.Logger) { l.With("component", "graph").ErrorContext(ctx, "boom") })
		if rec["request_id"] != "req-1" || rec["component"] != "graph" {
			t.Errorf("record = %v", rec)
		}
	})
	t.Run("after WithGroup", func(t *testing.T) {
		// The id is added when the record is handled, so it lands in the open group.
		rec := logLine(t, func(l *slog.Logger) { l.WithGroup("push").WarnContext(ctx, "slow", "ms", 12) })
		group, _ := rec["push"].(map[string]any)
		if group["request_id"] != "req-1" || group["ms"] != float64(12) {
			t.Errorf("record = %v, want push.request_id", rec)
		}
	})
	t.Run("after WithAttrs and WithGroup", func(t *testing.T) {
		rec := logLine(t, func(l *slog.Logger) {
			l.With("a", 1).WithGroup("g").With("b", 2).InfoContext(ctx, "x")
		})
		group, _ := rec["g"].(map[string]any)
		if rec["a"] != float64(1) || group["b"] != float64(2) || group["request_id"] != "req-1" {
			t.Errorf("record = %v", rec)
		}
	})
	t.Run("level passes through", func(t *testing.T) {
		var buf bytes.Buffer
		l := slog.New(Handler{slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})})
		l.InfoContext(ctx, "quiet")
		if buf.Len() != 0 {
			t.Errorf("a record below the level was written: %s", buf.String())
		}
	})
}
