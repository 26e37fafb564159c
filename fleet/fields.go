package fleet

import (
	"reflect"
	"strconv"
	"strings"
)

// field is one YAML key of a Go struct. The strict decoder and the JSON Schema
// generator both read the types through fieldsOf, so the two can never disagree on
// which keys exist, which are required and which values are allowed.
type field struct {
	key    string       // the YAML key
	goName string       // the Go field name, for doc lookup
	owner  reflect.Type // the struct type that declares the field
	index  []int        // reflect index path, through inlined structs
	typ    reflect.Type
	rules  rules
}

// rules are the constraints written in a field's `schema` struct tag:
// required, dns1123, enum=A|B, min=N, max=N (integers), positive (numbers
// above 0).
type rules struct {
	required bool
	dns1123  bool
	positive bool
	enum     []string
	min, max *int
}

// fieldsOf lists the YAML keys of struct type t in declaration order, flattening
// fields tagged `yaml:",inline"` and skipping fields tagged `yaml:"-"`.
func fieldsOf(t reflect.Type) []field {
	var out []field
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("yaml")
		if tag == "-" || !sf.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(opts, "inline") {
			for _, inner := range fieldsOf(sf.Type) {
				inner.index = append([]int{i}, inner.index...)
				out = append(out, inner)
			}
			continue
		}
		out = append(out, field{
			key:    name,
			goName: sf.Name,
			owner:  t,
			index:  []int{i},
			typ:    sf.Type,
			rules:  parseRules(sf.Tag.Get("schema")),
		})
	}
	return out
}

func parseRules(tag string) rules {
	var r rules
	for _, part := range strings.Split(tag, ",") {
		key, value, _ := strings.Cut(part, "=")
		switch key {
		case "required":
			r.required = true
		case "dns1123":
			r.dns1123 = true
		case "positive":
			r.positive = true
		case "enum":
			r.enum = strings.Split(value, "|")
		case "min", "max":
			n, err := strconv.Atoi(value)
			if err != nil {
				panic("fleet: bad schema tag " + tag) // a programming error in types.go
			}
			if key == "min" {
				r.min = &n
			} else {
				r.max = &n
			}
		}
	}
	return r
}
