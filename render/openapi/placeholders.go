package openapi

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"

	"go.yaml.in/yaml/v3"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/render/secrets"
)

// Placeholder is the value a string secret gets when validation renders a tenant
// whose secrets file no configured key decrypts.
const Placeholder = "meridian-validate-placeholder"

// encType reads the type SOPS records, in plain text, at the end of an encrypted
// value: ENC[AES256_GCM,data:...,type:str].
var encType = regexp.MustCompile(`,type:([a-z]+)\]$`)

// UsePlaceholders prepares m, loaded from dir, for rendering without the keys of
// some secrets files: every tenant whose secrets file dec cannot decrypt for want of
// a key gets, instead of the file, placeholder values of the same keys and types,
// merged as the last layer of its apps' values in every region. It returns those
// files, sorted. Other decryption failures are left for rendering to report. The
// placeholders are strings (Placeholder), 1, 1.5 or true; values the file keeps in
// plain text (its unencrypted suffix) keep their value.
func UsePlaceholders(dir string, m *fleet.Model, dec *secrets.Decryptor) ([]string, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	var replaced []string
	for _, t := range m.Tenants {
		if t.SecretsFile == "" {
			continue
		}
		data, err := root.ReadFile(t.SecretsFile)
		if err != nil {
			return nil, err
		}
		if _, err := dec.Decrypt(t.SecretsFile, data); !errors.Is(err, secrets.ErrNoKey) {
			continue
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 {
			return nil, fmt.Errorf("%s: not valid YAML", t.SecretsFile)
		}
		byApp, _ := placeholderValues(doc.Content[0]).(map[string]any)
		for i, ta := range t.Spec.Apps {
			appSecrets, _ := byApp[ta.Name].(map[string]any)
			if len(appSecrets) == 0 {
				continue
			}
			if ta.RegionValues == nil {
				t.Spec.Apps[i].RegionValues = map[string]fleet.Values{}
			}
			for _, r := range t.Spec.Regions {
				t.Spec.Apps[i].RegionValues[r] = fleet.Merge(ta.RegionValues[r], appSecrets)
			}
		}
		replaced = append(replaced, t.SecretsFile)
		t.SecretsFile = ""
	}
	slices.Sort(replaced)
	return replaced, nil
}

// placeholderValues turns the encrypted YAML of a SOPS file into the same tree with
// placeholders for its encrypted values, leaving out the sops section.
func placeholderValues(n *yaml.Node) any {
	switch n.Kind {
	case yaml.MappingNode:
		out := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i].Value; k != "sops" {
				out[k] = placeholderValues(n.Content[i+1])
			}
		}
		return out
	case yaml.SequenceNode:
		out := make([]any, len(n.Content))
		for i, item := range n.Content {
			out[i] = placeholderValues(item)
		}
		return out
	case yaml.ScalarNode:
		m := encType.FindStringSubmatch(n.Value)
		if m == nil {
			var plain any
			_ = n.Decode(&plain)
			return plain
		}
		switch m[1] {
		case "int":
			return 1
		case "float":
			return 1.5
		case "bool":
			return true
		}
		return Placeholder
	}
	return nil
}
