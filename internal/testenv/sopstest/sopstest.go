// Package sopstest encrypts files for tests as `sops --encrypt` would, and searches
// what a run left behind for the values it decrypted.
package sopstest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	sopsage "github.com/getsops/sops/v3/age"
	"github.com/getsops/sops/v3/config"
	sopsyaml "github.com/getsops/sops/v3/stores/yaml"

	"meridian.dev/meridian/render/secrets"
)

// Encrypt encrypts plain YAML for the first age identity of keyFile, in memory.
func Encrypt(t testing.TB, keyFile, plain string) []byte {
	t.Helper()
	out, err := EncryptYAML(keyFile, plain, "")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// EncryptYAML encrypts plain YAML for the first age identity of keyFile, in
// memory: every value, or with encryptedRegex only the values under keys it
// matches, as `sops --encrypt --encrypted-regex` does (Flux's way for a Secret:
// '^(data|stringData)$').
func EncryptYAML(keyFile, plain, encryptedRegex string) ([]byte, error) {
	data, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	ids, err := age.ParseIdentities(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	x, ok := ids[0].(*age.X25519Identity)
	if !ok {
		return nil, fmt.Errorf("%s: the first identity is not an X25519 age key", keyFile)
	}
	store := sopsyaml.NewStore(&config.YAMLStoreConfig{})
	branches, err := store.LoadPlainFile([]byte(plain))
	if err != nil {
		return nil, err
	}
	md := sops.Metadata{
		KeyGroups: []sops.KeyGroup{{&sopsage.MasterKey{Recipient: x.Recipient().String()}}},
		Version:   "3.13.3",
	}
	if encryptedRegex != "" {
		md.EncryptedRegex = encryptedRegex
	} else {
		md.UnencryptedSuffix = sops.DefaultUnencryptedSuffix
	}
	tree := sops.Tree{Branches: branches, Metadata: md}
	dataKey, errs := tree.GenerateDataKey()
	if len(errs) > 0 {
		return nil, fmt.Errorf("encrypt the data key: %v", errs)
	}
	cipher := aes.NewCipher()
	mac, err := tree.Encrypt(dataKey, cipher)
	if err != nil {
		return nil, err
	}
	tree.Metadata.LastModified = time.Now().UTC()
	if tree.Metadata.MessageAuthenticationCode, err = cipher.Encrypt(mac, dataKey, tree.Metadata.LastModified.Format(time.RFC3339)); err != nil {
		return nil, err
	}
	return store.EmitEncryptedFile(tree)
}

// Values decrypts each SOPS file (file name → content) with the keys of keyFile
// and returns every value they hold that Meridian treats as a secret
// (secrets.Leaves).
func Values(t testing.TB, keyFile string, files map[string][]byte) []string {
	t.Helper()
	keys, err := secrets.KeysFromFiles(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	dec := secrets.NewDecryptor(keys)
	seen := map[string]bool{}
	var out []string
	for name, data := range files {
		plain, err := dec.Decrypt(name, data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, v := range secrets.Leaves(plain) {
			if !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
	}
	return out
}

// Find reports where any of values, or its base64 form (how it sits in a
// Secret's data), occurs in haystack (a place → what it holds), as
// "place: value #i" or "place: value #i in base64": never the value itself.
func Find(values []string, haystack map[string][]byte) []string {
	var hits []string
	for place, text := range haystack {
		for i, v := range values {
			if bytes.Contains(text, []byte(v)) {
				hits = append(hits, place+": value #"+strconv.Itoa(i))
			}
			if bytes.Contains(text, []byte(base64.StdEncoding.EncodeToString([]byte(v)))) {
				hits = append(hits, place+": value #"+strconv.Itoa(i)+" in base64")
			}
		}
	}
	slices.Sort(hits)
	return hits
}
