package openapi

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// bundle is the file format of a bundled schema set: the component schemas of every
// group-version a kube-apiserver serves under /openapi/v3, merged (their names are
// unique across group-versions), with only what validation reads, and the kinds one
// can create with the schema and scope of each.
type bundle struct {
	// Version is the Kubernetes version the schemas were read from, such as 1.37.2.
	Version string `json:"version"`
	// Kinds are keyed by group/version/kind ("apps/v1/Deployment", "v1/ConfigMap").
	Kinds map[string]kindInfo `json:"kinds"`
	// Schemas are the component schemas, keyed by name.
	Schemas map[string]json.RawMessage `json:"schemas"`
}

// kindInfo is what a bundle knows of one kind.
type kindInfo struct {
	// Schema is the name of the kind's component schema.
	Schema string `json:"schema"`
	// Namespaced reports that objects of the kind live in a namespace.
	Namespaced bool `json:"namespaced"`
}

// keptKeywords are the schema keywords validation reads; the rest (descriptions,
// defaults, list and patch strategies) are dropped from the bundle to keep it small.
var keptKeywords = map[string]bool{
	"type": true, "format": true, "properties": true, "additionalProperties": true, "items": true,
	"required": true, "enum": true, "$ref": true, "allOf": true, "anyOf": true, "oneOf": true, "not": true,
	"nullable": true, "minimum": true, "maximum": true, "exclusiveMinimum": true, "exclusiveMaximum": true,
	"minLength": true, "maxLength": true, "minItems": true, "maxItems": true, "pattern": true,
	"x-kubernetes-int-or-string": true, "x-kubernetes-preserve-unknown-fields": true,
	"x-kubernetes-embedded-resource": true,
}

// namespacedPath matches the API paths of namespaced collections.
var namespacedPath = regexp.MustCompile(`/namespaces/\{namespace\}/[^/{]+$`)

// addGroupVersion merges one group-version's /openapi/v3 document into b: its
// component schemas, compacted, and the kinds its paths let clients create.
func (b *bundle) addGroupVersion(doc []byte) error {
	var d struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return err
	}
	for name, s := range d.Components.Schemas {
		compact, err := json.Marshal(compactSchema(s))
		if err != nil {
			return fmt.Errorf("schema %s: %w", name, err)
		}
		b.Schemas[name] = compact
	}
	for p, ops := range d.Paths {
		var post struct {
			Action string `json:"x-kubernetes-action"`
			GVK    *struct {
				Group, Version, Kind string
			} `json:"x-kubernetes-group-version-kind"`
			RequestBody struct {
				Content map[string]struct {
					Schema struct {
						Ref string `json:"$ref"`
					} `json:"schema"`
				} `json:"content"`
			} `json:"requestBody"`
		}
		raw, ok := ops["post"]
		if !ok || strings.Contains(p, "{name}") { // a subresource, not a kind of object
			continue
		}
		if err := json.Unmarshal(raw, &post); err != nil {
			return fmt.Errorf("path %s: %w", p, err)
		}
		if post.Action != "post" || post.GVK == nil {
			continue
		}
		var ref string
		for _, c := range post.RequestBody.Content { // "*/*" today; every entry names the same schema
			ref = c.Schema.Ref
		}
		if ref == "" {
			continue
		}
		key := gvkKey(post.GVK.Group, post.GVK.Version, post.GVK.Kind)
		b.Kinds[key] = kindInfo{Schema: strings.TrimPrefix(ref, refPrefix), Namespaced: namespacedPath.MatchString(p)}
	}
	return nil
}

// compactSchema keeps the keywords validation reads and turns the v3 form of a
// reference with siblings, allOf: [{$ref: X}], into a plain $ref.
func compactSchema(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	out := map[string]any{}
	for k, val := range m {
		if !keptKeywords[k] {
			continue
		}
		switch k {
		case "properties":
			props := map[string]any{}
			for name, p := range val.(map[string]any) {
				props[name] = compactSchema(p)
			}
			out[k] = props
		case "items", "additionalProperties", "not":
			out[k] = compactSchema(val)
		case "allOf", "anyOf", "oneOf":
			list := val.([]any)
			compacted := make([]any, len(list))
			for i, s := range list {
				compacted[i] = compactSchema(s)
			}
			out[k] = compacted
		default:
			out[k] = val
		}
	}
	if all, ok := out["allOf"].([]any); ok && len(all) == 1 {
		if ref, ok := all[0].(map[string]any)["$ref"]; ok && len(all[0].(map[string]any)) == 1 {
			delete(out, "allOf")
			out["$ref"] = ref
		}
	}
	return out
}

// encode writes b as gzip-compressed JSON, byte for byte the same for the same input.
func (b *bundle) encode() ([]byte, error) {
	data, err := json.Marshal(b) // maps are written with sorted keys
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func gvkKey(group, version, kind string) string {
	if group == "" {
		return version + "/" + kind
	}
	return group + "/" + version + "/" + kind
}

const refPrefix = "#/components/schemas/"
