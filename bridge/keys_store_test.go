package bridge

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/testenv"
)

// A record of {keys}:set that does not open stops Load with an error naming its kid — never the
// key — and pauses rotation, while the keys that do open still verify.
func TestTamperedKeyNamesTheKid(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		tamper func(recs map[string]keyRecord, victim, other string) string // new value of victim's field
		kek    func(kek []byte) []byte
	}{
		{"ciphertext flipped", func(recs map[string]keyRecord, victim, _ string) string {
			r := recs[victim]
			b, _ := base64.RawStdEncoding.DecodeString(r.Sealed)
			b[len(b)-1] ^= 1
			r.Sealed = base64.RawStdEncoding.EncodeToString(b)
			return kmJSON(r)
		}, nil},
		{"another key's sealed value", func(recs map[string]keyRecord, victim, other string) string {
			r := recs[victim]
			r.Sealed = recs[other].Sealed
			return kmJSON(r)
		}, nil},
		{"sealed value not base64", func(recs map[string]keyRecord, victim, _ string) string {
			r := recs[victim]
			r.Sealed = "%%%"
			return kmJSON(r)
		}, nil},
		{"record not JSON", func(map[string]keyRecord, string, string) string { return "{" }, nil},
		{"algorithm changed", func(recs map[string]keyRecord, victim, _ string) string {
			r := recs[victim]
			r.Alg = "RS256"
			return kmJSON(r)
		}, nil},
		{"another key-encryption key", nil, func(kek []byte) []byte { return kmKEK(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store, clock, kek := testenv.Redis(t), testenv.NewClock(), kmKEK(t)
			a := loadedKM(t, store, kek, clock.Now, KeyOptions{Algorithms: []string{"EdDSA"}})
			recs := kmRecords(t, store)
			victim, other := kmOne(t, recs, "ES256", keyStateCurrent), kmOne(t, recs, "EdDSA", keyStateCurrent)
			if tc.tamper != nil {
				if err := store.Client.HSet(ctx, store.Key(keysSetKey), victim, tc.tamper(recs, victim, other)).Err(); err != nil {
					t.Fatal(err)
				}
			}
			kek2 := kek
			if tc.kek != nil {
				kek2 = tc.kek(kek)
			}
			before, _ := store.Client.HGetAll(ctx, store.Key(keysSetKey)).Result()

			b := newKM(t, store, kek2, clock.Now, KeyOptions{Algorithms: []string{"EdDSA"}})
			err := b.Load(ctx)
			if !errors.Is(err, ErrSealedKey) || !strings.Contains(err.Error(), victim) {
				t.Fatalf("Load: %v, want ErrSealedKey naming %s", err, victim)
			}
			if strings.Contains(err.Error(), recs[victim].Sealed) {
				t.Fatalf("the error shows the sealed key: %v", err)
			}
			clock.Advance(30 * 24 * time.Hour) // everything is due
			if err := b.step(ctx); err == nil {
				t.Fatal("step ran over an unreadable key")
			}
			if _, err := b.Rotate(ctx); err == nil {
				t.Fatal("Rotate ran over an unreadable key")
			}
			after, _ := store.Client.HGetAll(ctx, store.Key(keysSetKey)).Result()
			if !maps.Equal(before, after) {
				t.Fatal("{keys}:set changed while a key could not be opened")
			}
			if tc.kek == nil { // the untouched key still works on the replica that loaded it
				tok, err := a.Sign("EdDSA", "JWT", map[string]string{})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := b.Verify(tok); err != nil {
					t.Fatalf("the key that opened does not verify: %v", err)
				}
			}
		})
	}
}

func kmJSON(r keyRecord) string {
	b, _ := json.Marshal(r)
	return string(b)
}
