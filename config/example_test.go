package config

import (
	"os"
	"reflect"
	"regexp"
	"testing"

	"go.yaml.in/yaml/v3"
)

const examplePath = "../tongban.example.yaml"

// The annotated example is the reference operators copy from: it must load as it is.
func TestExampleLoads(t *testing.T) {
	c, err := Load(examplePath, []string{})
	if err != nil {
		t.Fatalf("%s:\n%v", examplePath, err)
	}
	if c.Dev {
		t.Error("the example is a production configuration; dev must be false")
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
