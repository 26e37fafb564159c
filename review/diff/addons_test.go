package diff

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestAddonChange changes fleet-example's addon: the report lists its units, in
// no tenant's name, and the text and Markdown forms show them as addons.
func TestAddonChange(t *testing.T) {
	baseDir, headDir := t.TempDir(), t.TempDir()
	for _, dir := range []string{baseDir, headDir} {
		if err := os.CopyFS(dir, os.DirFS(exampleDir)); err != nil {
			t.Fatal(err)
		}
	}
	editAll(t, headDir, "addons/platform/base/configmap.yaml", "owner: platform-team", "owner: platform-sre")

	r := newRenderer(t)
	report, err := Compare(renderDir(t, r, baseDir, "base"), renderDir(t, r, headDir, "head"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range report.Units {
		got = append(got, u.ID.String()+" addon="+u.Addon+" tenant="+u.Tenant)
	}
	want := []string{
		"addon:ap-northeast-2/platform addon=platform tenant=",
		"addon:eu-west-2/platform addon=platform tenant=",
		"addon:us-east-1/platform addon=platform tenant=",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("units (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"platform"}, report.Summary.Addons); diff != "" {
		t.Errorf("summary addons (-want +got):\n%s", diff)
	}
	if len(report.Summary.Tenants) != 0 {
		t.Errorf("summary tenants %v: an addon belongs to no tenant", report.Summary.Tenants)
	}

	var text, md bytes.Buffer
	if err := Text(&text, report); err != nil {
		t.Fatal(err)
	}
	if err := Markdown(&md, report, MarkdownLimit); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "1 addon") || !strings.Contains(text.String(), "addon:eu-west-2/platform") {
		t.Errorf("text does not show the addon:\n%s", text.String())
	}
	if !strings.Contains(md.String(), "| (addons) | ap-northeast-2, eu-west-2, us-east-1 | platform | 0 | 3 | 0 | 0 |") {
		t.Errorf("markdown does not list the addons under %s:\n%s", addonsRow, md.String())
	}
}
