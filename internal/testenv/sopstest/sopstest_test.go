package sopstest

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/getsops/sops/v3/aes"
	"github.com/getsops/sops/v3/config"
	sopsyaml "github.com/getsops/sops/v3/stores/yaml"
	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

const demoKey = "../../../fleet-example/demo-age-key.txt"

func TestEncryptValuesFind(t *testing.T) {
	file := Encrypt(t, demoKey, "portal:\n  password: s3cret-value-1\n  short: ab\n  port: 5432\n")
	values := Values(t, demoKey, map[string][]byte{"tenants/x.secrets.sops.yaml": file})
	if diff := cmp.Diff([]string{"5432", "s3cret-value-1"}, values); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	got := Find(values, map[string][]byte{
		"log":    []byte(`{"msg":"applied","value":"s3cret-value-1"}`),
		"secret": []byte("password: " + base64.StdEncoding.EncodeToString([]byte("s3cret-value-1"))),
		"clean":  []byte("password: [redacted]"),
		"cipher": file,
	})
	want := []string{"log: value #1", "secret: value #1 in base64"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hits (-want +got):\n%s", diff)
	}
}

func TestEncryptYAMLRegex(t *testing.T) {
	plain := "apiVersion: v1\nkind: Secret\nmetadata:\n  name: values\nstringData:\n  portal.yaml: s3cret-value-2\n"
	file, err := EncryptYAML(demoKey, plain, "^(data|stringData)$")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: Secret\n", "name: values\n", "encrypted_regex: ^(data|stringData)$"} {
		if !strings.Contains(string(file), want) {
			t.Errorf("encrypted file lacks %q in the clear:\n%s", want, file)
		}
	}
	if strings.Contains(string(file), "s3cret-value-2") {
		t.Errorf("stringData in the clear:\n%s", file)
	}
	// sops decrypts it with the key, as kustomize-controller does.
	t.Setenv("SOPS_AGE_KEY_FILE", demoKey)
	store := sopsyaml.NewStore(&config.YAMLStoreConfig{})
	tree, err := store.LoadEncryptedFile(file)
	if err != nil {
		t.Fatal(err)
	}
	key, err := tree.Metadata.GetDataKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.Decrypt(key, aes.NewCipher()); err != nil {
		t.Fatal(err)
	}
	got, err := store.EmitPlainFile(tree.Branches)
	if err != nil {
		t.Fatal(err)
	}
	var want, gotObj map[string]any
	if err := yaml.Unmarshal([]byte(plain), &want); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(got, &gotObj); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, gotObj); diff != "" {
		t.Errorf("decrypted (-want +got):\n%s", diff)
	}
}
