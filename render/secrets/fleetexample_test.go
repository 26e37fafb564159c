package secrets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The example fleet ships a public demo age key and tenant secrets encrypted
// for it; they must decrypt with that key alone, MAC verified.
func TestFleetExampleSecretsDecrypt(t *testing.T) {
	root := filepath.Join("..", "..", "fleet-example")
	keys, err := KeysFromFiles(filepath.Join(root, "demo-age-key.txt"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "tenants", "*.secrets.sops.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("fleet-example has no tenants/*.secrets.sops.yaml")
	}
	d := NewDecryptor(keys)
	for _, f := range files {
		name := strings.TrimPrefix(filepath.ToSlash(f), "../../fleet-example/")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			values, err := d.Decrypt(name, data)
			if err != nil {
				t.Fatal(err)
			}
			// Check the shape only: the values themselves stay out of test output.
			portal, _ := values["portal"].(map[string]any)
			db, _ := portal["database"].(map[string]any)
			if pw, _ := db["password"].(string); len(pw) < MinSecretLen {
				t.Errorf("portal.database.password is missing or shorter than %d bytes", MinSecretLen)
			}
			if len(Leaves(values)) == 0 {
				t.Error("no secret leaves to redact")
			}
		})
	}
}
