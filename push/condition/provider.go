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
//
// It also declares person.facts and event.attributes as structs of the declared facts (see
// facts.go), whose fields read the Go map directly.
type provider struct {
	*types.Registry
	facts factTable
}

func (r provider) FindStructType(structType string) (*types.Type, bool) {
	if structType == factsTypeName || structType == attributesTypeName {
		return types.NewTypeTypeWithParam(types.NewObjectType(structType)), true
	}
	return r.Registry.FindStructType(structType)
}

func (r provider) FindStructFieldNames(structType string) ([]string, bool) {
	switch structType {
	case factsTypeName:
		return r.facts.names(false), true
	case attributesTypeName:
		return r.facts.names(true), true
	}
	return r.Registry.FindStructFieldNames(structType)
}

func (r provider) FindStructFieldType(structType, fieldName string) (*types.FieldType, bool) {
	switch structType {
	case factsTypeName, attributesTypeName:
		if f, ok := r.facts[fieldName]; ok {
			return f.fieldType(), true
		}
		if structType == attributesTypeName && fieldName == ResidenceAttribute {
			return residenceFieldType, true
		}
		return nil, false
	}
	ft, ok := r.Registry.FindStructFieldType(structType, fieldName)
	if !ok {
		return ft, ok
	}
	switch structType + "." + fieldName {
	case personTypeName + ".facts":
		ft = retyped(ft, factsTypeName)
		return withGetter(ft, func(o any) (any, bool) {
			if p, ok := o.(*Person); ok {
				return p.Facts, true
			}
			return nil, false
		}), true
	case eventTypeName + ".attributes":
		ft = retyped(ft, attributesTypeName)
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

// retyped is ft with the type of a declared-facts struct instead of map(string, dyn).
func retyped(ft *types.FieldType, typeName string) *types.FieldType {
	out := *ft
	out.Type = types.NewObjectType(typeName)
	return &out
}
