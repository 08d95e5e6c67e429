// Package catalog is what the member apps offer and what rules may know: the services (事项)
// of the member apps and the facts events may carry about a person, loaded once at start-up
// from the `catalog` file (format in docs/catalog.md) or, in dev mode, from the embedded sample
// (devdata/catalog.yaml). The loaded catalog never changes and lives in memory; the bridge reads
// it to check a switch's service and its assurance, GraphQL's `services` searches it, and push
// checks events and rules against its facts.
//
// Services (catalog.go): loading checks everything and reports every problem with its line:
// an id of 2 to 64 lower-case letters, digits and hyphens, unique; a name and a department; an
// app that is a provider or client id; a category among 教育 就业 社保 医疗 养老 居住 婚育 出行
// 民政 税务 公积金; a deep link that is https (http only on a loopback host); min_assurance 1
// to 4.
//
// Facts (facts.go) are declared in the same file, beside the services (PIPL: purpose
// limitation, minimum necessity): a name (a CEL identifier), a type (bool, int, double, string,
// timestamp, list(string)), a description, whether it is sensitive, its writers (machine client
// ids, checked against the configuration at start: CheckWriters) and its readers
// (departments). The rule language sees exactly these facts with their types (ConditionFacts,
// for push/condition), and ReadableBy is the purpose check a department's rule is compiled
// with.
//
// It owns no Redis keys.
package catalog
