package condition

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"
)

// Condition is a compiled condition. It never changes and is safe for concurrent use.
type Condition struct {
	src   string
	prg   cel.Program
	reads []FactRead
}

// Source is the condition as written.
func (c *Condition) Source() string { return c.src }

// Reads lists the facts the condition reads, through person.facts or event.attributes, each
// once, where it is first read: what the catalog checks against the rule's department.
func (c *Condition) Reads() []FactRead { return c.reads }

// noEvent is what a backfill evaluates against: no field is set, so `has(event.type)` is false.
// It is never written to.
var noEvent = &Event{}

// Eval evaluates the condition for a person, the triggering event (nil in a backfill) and the
// time. An error means the condition could not decide, for example because it reads a fact the
// person does not have without guarding it with has(), or because it ran over MaxRuntimeCost; the
// result is then false.
func (c *Condition) Eval(p *Person, ev *Event, now time.Time) (bool, error) {
	if p == nil {
		return false, errors.New("condition: evaluate: no person")
	}
	if ev == nil {
		ev = noEvent
	}
	act := activations.Get().(*activation)
	*act = activation{person: p, event: ev, now: now}
	out, _, err := c.prg.Eval(act)
	*act = activation{} // drop the references before the activation waits in the pool
	activations.Put(act)
	if err != nil {
		return false, fmt.Errorf("condition: evaluate: %w", err)
	}
	b, ok := out.(types.Bool)
	if !ok {
		// Unreachable for a condition Compile admitted, which is typed bool; kept as a guard.
		return false, fmt.Errorf("condition: evaluate: result is %s, not bool", out.Type().TypeName())
	}
	return bool(b), nil
}

// activation resolves the three variables without building a map per evaluation. person and
// event are handed over as Go pointers: CEL reads their fields in place through the native type
// descriptors and only wraps a field's value when the condition uses it.
type activation struct {
	person *Person
	event  *Event
	now    time.Time
	nowVal ref.Val // now as a CEL value, made on first use
}

// activations are reused because an activation escapes into the interpreter: without the pool,
// every evaluation would allocate one.
var activations = sync.Pool{New: func() any { return new(activation) }}

var _ interpreter.Activation = (*activation)(nil)

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "person":
		return a.person, true
	case "event":
		return a.event, true
	case "now":
		if a.nowVal == nil {
			a.nowVal = types.Timestamp{Time: a.now}
		}
		return a.nowVal, true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }
