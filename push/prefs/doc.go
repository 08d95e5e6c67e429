// Package prefs keeps a person's notification preferences: whether pushes are on at all, the
// categories they muted (their notifications still reach the inbox, they are only not pushed),
// and quiet hours in their own time zone, during which pushes wait until the hours end.
// Where a person set nothing, the operator's defaults apply (push.time_zone and
// push.quiet_hours in config).
//
// Every value is checked on the way in and refused with an *InputError naming the field
// (quietStart, quietEnd, timeZone, mutedCategories) and saying what is wrong and what is
// accepted; an update is written in one HSET, so it changes all of its fields or none.
//
// Redis keys (under the store prefix):
//
//	{p:<pid>}:prefs  hash  quiet_start, quiet_end ("HH:MM"; both "" = the person wants no
//	                       quiet hours), tz (IANA name), muted (JSON array of categories),
//	                       push ("1" or "0"); a field that is absent takes the default
package prefs
