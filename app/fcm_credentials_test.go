package app

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"firebase.google.com/go/v4/messaging"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/fakefcm"
)

// Outside dev mode the sender is built from push.fcm as production builds it: the service
// account in credentials_file, used as Google's SDK uses it (the OAuth token comes from the
// file's token_uri), and the endpoint. Here the token_uri is a token endpoint of the test's,
// and the FCM server accepts only the access token that endpoint issued.
func TestSenderFromCredentialsFile(t *testing.T) {
	t.Parallel()
	var exchanges atomic.Int32
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || r.Form.Get("assertion") == "" {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		}
		exchanges.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"ya29.from-token-uri","expires_in":3600,"token_type":"Bearer"}`))
	}))
	defer tokens.Close()
	fcm := fakefcm.NewServer("tongban-prod", fakefcm.WithAcceptToken(func(tok string) bool { return tok == "ya29.from-token-uri" }))
	api := httptest.NewServer(fcm.Handler())
	defer api.Close()

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	sa, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "tongban-prod", "private_key_id": "k1",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": "push@tongban-prod.iam.gserviceaccount.com", "client_id": "1",
		"token_uri": tokens.URL + "/token",
	})
	file := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(file, sa, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dev = false
	cfg.Push.FCM = config.FCM{ProjectID: "tongban-prod", CredentialsFile: file, Endpoint: api.URL + "/v1"}
	a := &App{cfg: cfg, log: slog.New(slog.DiscardHandler)}
	sender, err := a.buildSender()
	if err != nil {
		t.Fatal(err)
	}
	if a.FCMSink != nil {
		t.Fatal("the dev sink was started outside dev mode")
	}
	tok := "prod-phone:" + strings.Repeat("p", 40)
	resp, err := sender.SendEach(context.Background(), []*messaging.Message{{Token: tok, Notification: &messaging.Notification{Title: "t", Body: "b"}}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.SuccessCount != 1 {
		t.Fatalf("SendEach: %v", resp.Responses[0].Error)
	}
	if exchanges.Load() == 0 || len(fcm.Messages()) != 1 {
		t.Fatalf("%d token exchanges, %d messages", exchanges.Load(), len(fcm.Messages()))
	}
}

// Outside dev mode without push.fcm there is no sender: nothing is pushed, and it says so.
func TestNoSenderWithoutFCM(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dev = false
	cfg.Push.FCM = config.FCM{}
	a := &App{cfg: cfg, log: slog.New(slog.DiscardHandler)}
	if s, err := a.buildSender(); s != nil || err != nil {
		t.Fatalf("sender %v, %v", s, err)
	}
}
