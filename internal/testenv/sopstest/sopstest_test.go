package sopstest

import (
	"encoding/base64"
	"testing"

	"github.com/google/go-cmp/cmp"
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
