package config

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const examplePath = "../tongban.example.yaml"

// The annotated example is the reference operators copy from, and it is public: as it is, it
// parses but is refused, exactly once for each secret it publishes and for nothing else.
func TestExampleIsRefusedAsItIs(t *testing.T) {
	c, err := Load(examplePath, []string{})
	if c.Dev {
		t.Error("the example is a production configuration; dev must be false")
	}
	want := []string{
		"secrets.pepper", "secrets.key_encryption_key",
		"providers[0].client_secret", "providers[1].client_secret",
		"clients[0].secret_sha256", "clients[1].secret",
		"machine_clients[0].secret", "machine_clients[1].secret_sha256",
		"push.wechat.mini_programs[0].secret", "push.alipay.mini_programs[0].private_key",
	}
	ps := problems(t, err)
	if len(ps) != len(want) {
		t.Fatalf("%s: want %d problems, one per published secret, got %d:\n%v", examplePath, len(want), len(ps), err)
	}
	for i, p := range ps {
		if p.Key != want[i] || !strings.Contains(p.Message, "published in tongban.example.yaml") {
			t.Errorf("line %d = %q, want %s refused as published in tongban.example.yaml", i+1, p, want[i])
		}
	}
}

// With real secrets from the environment and from files, as the example's header says, it loads.
func TestExampleLoadsWithRealSecrets(t *testing.T) {
	random := func() string {
		b := make([]byte, 32)
		rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	kekFile := writeFile(t, "kek", random()+"\n")
	clientFile := writeFile(t, "suishenban", random()+"\n")
	sum := sha256.Sum256([]byte(random()))
	env := []string{
		"TONGBAN_SECRETS_PEPPER=" + random(),
		"TONGBAN_SECRETS_KEY_ENCRYPTION_KEY=",
		"TONGBAN_SECRETS_KEY_ENCRYPTION_KEY_FILE=" + kekFile,
		"TONGBAN_PROVIDERS_0_CLIENT_SECRET=" + random(),
		"TONGBAN_PROVIDERS_1_CLIENT_SECRET=" + random(),
		"TONGBAN_CLIENTS_0_SECRET_SHA256=" + hex.EncodeToString(sum[:]),
		"TONGBAN_CLIENTS_1_SECRET=",
		"TONGBAN_CLIENTS_1_SECRET_FILE=" + clientFile,
		"TONGBAN_MACHINE_CLIENTS_0_SECRET=" + random(),
		"TONGBAN_MACHINE_CLIENTS_1_SECRET_SHA256=" + strings.Repeat("5e", 32),
		"TONGBAN_PUSH_WECHAT_MINI_PROGRAMS_0_SECRET=" + random(),
		"TONGBAN_PUSH_ALIPAY_MINI_PROGRAMS_0_PRIVATE_KEY=" + random(),
	}
	c, err := Load(examplePath, env)
	if err != nil {
		t.Fatalf("%s with real secrets:\n%v", examplePath, err)
	}
	if c.Dev {
		t.Error("the example is a production configuration; dev must be false")
	}
}

// Every secret the example writes out is in exampleSecrets, so that a value added to the
// example is refused too.
func TestExampleSecretsAreListed(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	var keys keyIndex
	keys.walk(&root, "")
	found := 0
	for _, k := range keys {
		name := k.path[strings.LastIndex(k.path, ".")+1:]
		isSecret := strings.Contains(name, "secret") || name == "pepper" || name == "key_encryption_key"
		if k.node == nil || !isSecret || strings.HasSuffix(name, "_file") || k.node.Value == "" {
			continue
		}
		found++
		if !slices.Contains(exampleSecrets, k.node.Value) {
			t.Errorf("%s = %q is published in the example but missing from exampleSecrets", k.path, k.node.Value)
		}
		if publishedIn(k.node.Value) != "tongban.example.yaml" {
			t.Errorf("%s: publishedIn = %q", k.path, publishedIn(k.node.Value))
		}
	}
	if found != 9 {
		t.Errorf("found %d secrets in the example, want 9: has the walk stopped finding them?", found)
	}
}

// Every key of Config must be written out in the example (not only mentioned in a comment), so
// a key added to the struct without documenting it fails here.
func TestExampleHasEveryKey(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	var keys keyIndex
	keys.walk(&root, "")
	index := regexp.MustCompile(`\[\d+\]`)
	present := map[string]bool{}
	for _, k := range keys {
		present[index.ReplaceAllString(k.path, "[]")] = true
	}
	for _, key := range yamlKeys(reflect.TypeFor[Config](), "") {
		if !present[key] {
			t.Errorf("%s does not set %s", examplePath, key)
		}
	}
}
