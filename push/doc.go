// Package push is 免申即享 ("enjoy without applying"): citizen events and profiles, eligibility
// rules in CEL, matching and backfill, notifications and the inbox, devices and preferences,
// and delivery through Firebase Cloud Messaging.
//
// It holds no code yet: it builds on identity (persons) and bridge (machine clients). It will
// own the Redis keys of events, profiles, rules, inboxes, devices and delivery streams.
package push
