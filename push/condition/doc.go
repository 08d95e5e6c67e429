// Package condition is the eligibility language of push rules: a CEL expression over the
// profile of one person, the event that triggered the evaluation and the time (the names and
// types are in docs/api.md, "The profile a rule sees").
//
// person.facts and event.attributes are typed by the declared facts the Env is built with
// (NewEnv(facts...), facts.go): each is a struct whose fields are the facts, so that
// `person.facts.monthlyIncome > 3000` type-checks as int and a misspelt fact is an undefined
// field with its position. A fact is read only by name: indexing (person.facts[k]), iterating
// (person.facts.exists(...)) and using person.facts, event.attributes, person or event whole
// are refused before type checking (access.go), so Condition.Reads lists every fact a condition
// can see, for the catalog to check against the rule's department. Env.Value types a value for
// its fact (a timestamp from RFC 3339 text, a double from a whole number) on its way in.
//
// A rule's condition is compiled once when the rule is saved or loaded (Env.Compile), which
// refuses anything that would fail or run long later: syntax and type errors with their line and
// column, a result that is not a bool, and an estimated cost above MaxEstimatedCost. The
// compiled Condition is then evaluated for each person an event or a backfill reaches
// (Condition.Eval). A condition with a comprehension (all, exists, map, filter) is bounded again
// at run time by MaxRuntimeCost, because the estimate rests on size hints, not guarantees, and
// only a comprehension can multiply an oversized input; other conditions run untracked, since
// tracking would cost more than evaluating them.
//
// The package also holds the conversions every caller needs to feed it: AgeAt for the age a
// rule sees, DecodeObject and Normalize for JSON attributes (CEL keeps int and double apart),
// RegionOf for a division code, and ParseSample for the sample profiles a rule author previews
// against. It holds no state beyond the compiled environment and owns no Redis keys.
package condition
