package openapi

import (
	"errors"
	"fmt"
	"maps"
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
	// placeholders returns the placeholder tree of file when dec has no key for it.
	placeholders := func(file string) (map[string]any, bool, error) {
		if file == "" {
			return nil, false, nil
		}
		data, err := root.ReadFile(file)
		if err != nil {
			return nil, false, err
		}
		if _, err := dec.Decrypt(file, data); !errors.Is(err, secrets.ErrNoKey) {
			return nil, false, nil
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 {
			return nil, false, fmt.Errorf("%s: not valid YAML", file)
		}
		tree, _ := placeholderValues(doc.Content[0]).(map[string]any)
		replaced = append(replaced, file)
		return tree, true, nil
	}
	// The fleet's and regions' files go into the values of their own layer.
	if tree, ok, err := placeholders(m.Fleet.SecretsFile); err != nil {
		return nil, err
	} else if ok {
		m.Fleet.Spec.Values = fleet.Merge(m.Fleet.Spec.Values, tree)
		m.Fleet.SecretsFile = ""
	}
	for _, r := range m.Regions {
		if tree, ok, err := placeholders(r.SecretsFile); err != nil {
			return nil, err
		} else if ok {
			r.Spec.Values = fleet.Merge(r.Spec.Values, tree)
			r.SecretsFile = ""
		}
	}
	for _, t := range m.Tenants {
		// A tenant's files, keyed by app, go last into its apps' values of every
		// region they cover.
		byRegion := map[string]map[string]any{}
		if tree, ok, err := placeholders(t.SecretsFile); err != nil {
			return nil, err
		} else if ok {
			for _, r := range t.Spec.Regions {
				byRegion[r] = tree
			}
			t.SecretsFile = ""
		}
		for _, r := range slices.Sorted(maps.Keys(t.RegionSecretsFiles)) {
			tree, ok, err := placeholders(t.RegionSecretsFiles[r])
			if err != nil {
				return nil, err
			}
			if ok {
				byRegion[r] = fleet.Merge(byRegion[r], tree)
				delete(t.RegionSecretsFiles, r)
			}
		}
		for i, ta := range t.Spec.Apps {
			for r, byApp := range byRegion {
				appSecrets, _ := byApp[ta.Name].(map[string]any)
				if len(appSecrets) == 0 {
					continue
				}
				if t.Spec.Apps[i].RegionValues == nil {
					t.Spec.Apps[i].RegionValues = map[string]fleet.Values{}
				}
				t.Spec.Apps[i].RegionValues[r] = fleet.Merge(t.Spec.Apps[i].RegionValues[r], appSecrets)
			}
		}
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
