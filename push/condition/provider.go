package condition

import (
	"cel.dev/cel-go/common/types"
)

// provider is the type registry NativeTypes builds, with quicker reads of facts and attributes.
// The native getters wrap a map field in a CEL map on each read, twice for
// `has(event.attributes.x) && event.attributes.x != ""`; handing the interpreter the Go map
// instead lets it look the key up directly, which took the newborn sample rule from about 1.8 µs
// and 6 allocations to 1.2 µs and 3. Values other than our own pointers (a Person CEL has
// wrapped, say inside a list literal) still go through the native getter.
type provider struct {
	*types.Registry
}

func (r provider) FindStructFieldType(structType, fieldName string) (*types.FieldType, bool) {
	ft, ok := r.Registry.FindStructFieldType(structType, fieldName)
	if !ok {
		return ft, ok
	}
	switch structType + "." + fieldName {
	case personTypeName + ".facts":
		return withGetter(ft, func(o any) (any, bool) {
			if p, ok := o.(*Person); ok {
				return p.Facts, true
			}
			return nil, false
		}), true
	case eventTypeName + ".attributes":
		return withGetter(ft, func(o any) (any, bool) {
			if e, ok := o.(*Event); ok {
				return e.Attributes, true
			}
			return nil, false
		}), true
	}
	return ft, true
}

// withGetter returns a copy of ft that reads through fast when it can and through ft otherwise.
func withGetter(ft *types.FieldType, fast func(any) (any, bool)) *types.FieldType {
	out := *ft
	out.GetFrom = func(o any) (any, error) {
		if v, ok := fast(o); ok {
			return v, nil
		}
		return ft.GetFrom(o)
	}
	return &out
}
