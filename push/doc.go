// Package push is 免申即享 ("enjoy without applying"): the service catalog, citizen events and
// profiles, eligibility rules in CEL, matching and backfill, notifications and the inbox,
// devices and preferences, and delivery through Firebase Cloud Messaging.
//
// The catalog (catalog.go) is the services (事项) of the member apps, loaded once at start-up
// from the `catalog` file (format in CONTRACT.md) or, in dev mode, from the embedded sample
// (devdata/catalog.yaml). Loading checks everything and reports every problem with its line: an
// id of 2 to 64 lower-case letters, digits and hyphens, unique; a name and a department; an app
// that is a provider or client id; a category among 教育 就业 社保 医疗 养老 居住 婚育 出行 民政
// 税务 公积金; a deep link that is https (http only on a loopback host); min_assurance 1 to 4.
// The loaded catalog never changes, lives in memory and owns no Redis keys; the bridge reads it
// to check a switch's service and its assurance.
//
// The rest builds on identity (persons) and bridge (machine clients); it will own the Redis
// keys of events, profiles, rules, inboxes, devices and delivery streams.
package push
