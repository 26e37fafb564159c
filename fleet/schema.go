package fleet

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
)

// kinds lists each file kind with its Go type, for schema generation.
var kinds = []struct {
	kind string
	typ  reflect.Type
}{
	{KindFleet, reflect.TypeFor[Fleet]()},
	{KindRegion, reflect.TypeFor[Region]()},
	{KindApp, reflect.TypeFor[App]()},
	{KindTenant, reflect.TypeFor[Tenant]()},
	{KindAddon, reflect.TypeFor[Addon]()},
}

// dns1123LabelPattern is the regular expression Kubernetes uses for DNS-1123 labels.
const dns1123LabelPattern = `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`

// jsonSchemas returns the JSON Schema (draft 2020-12) of every kind, keyed by the
// file name it is published under (fleet.json, region.json, ...). docs maps
// "Type.Field" to the field's doc comment, which becomes its description.
func jsonSchemas(docs map[string]string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, k := range kinds {
		s := schemaOf(k.typ, rules{}, docs)
		s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
		s["$id"] = "https://meridian.dev/schema/v1alpha1/" + strings.ToLower(k.kind) + ".json"
		s["title"] = "Meridian " + k.kind + " (" + APIVersion + ")"
		props := s["properties"].(map[string]any)
		props["apiVersion"].(map[string]any)["const"] = APIVersion
		props["kind"].(map[string]any)["const"] = k.kind
		data, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return nil, err
		}
		out[strings.ToLower(k.kind)+".json"] = append(data, '\n')
	}
	return out, nil
}

// schemaOf describes type t, whose field carries rules r.
func schemaOf(t reflect.Type, r rules, docs map[string]string) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	s := map[string]any{}
	switch t.Kind() {
	case reflect.Struct:
		props := map[string]any{}
		var required []string
		for _, f := range fieldsOf(t) {
			p := schemaOf(f.typ, f.rules, docs)
			if doc := docs[f.owner.Name()+"."+f.goName]; doc != "" {
				p["description"] = doc
			}
			props[f.key] = p
			if f.rules.required {
				required = append(required, f.key)
			}
		}
		s["type"] = "object"
		s["properties"] = props
		s["additionalProperties"] = false
		if len(required) > 0 {
			s["required"] = required
		}
	case reflect.Slice:
		s["type"] = "array"
		s["items"] = schemaOf(t.Elem(), rules{}, docs)
	case reflect.Map:
		s["type"] = "object"
		if t.Elem().Kind() != reflect.Interface {
			s["additionalProperties"] = schemaOf(t.Elem(), rules{}, docs)
		}
	case reflect.String:
		s["type"] = "string"
		if len(r.enum) > 0 {
			s["enum"] = r.enum
		}
		if r.dns1123 {
			s["pattern"] = dns1123LabelPattern
			s["maxLength"] = 63
		}
	case reflect.Int, reflect.Int32, reflect.Int64:
		s["type"] = "integer"
		if len(r.enum) > 0 {
			var values []int
			for _, e := range r.enum {
				n, _ := strconv.Atoi(e)
				values = append(values, n)
			}
			s["enum"] = values
		}
		if r.min != nil {
			s["minimum"] = *r.min
		}
		if r.max != nil {
			s["maximum"] = *r.max
		}
	case reflect.Float32, reflect.Float64:
		s["type"] = "number"
		if r.positive {
			s["exclusiveMinimum"] = 0
		}
	case reflect.Bool:
		s["type"] = "boolean"
	}
	return s
}
