package fleet

import (
	"errors"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

func TestDependsOnErrors(t *testing.T) {
	// billing runs web in us-east-1 and api in eu-west-2 only; dependsOn is added
	// under each app entry (web's on line 9, api's on line 12).
	billing := func(webDeps, apiDeps string) string {
		return "apiVersion: meridian.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: billing\nspec:\n  regions: [us-east-1, eu-west-2]\n  apps:\n    - name: web\n" + webDeps +
			"    - name: api\n      regions: [eu-west-2]\n" + apiDeps
	}
	addon := func(name, deps string) string {
		return "apiVersion: meridian.dev/v1alpha1\nkind: Addon\nmetadata:\n  name: " + name + "\nspec:\n  kustomize: {path: base}\n  namespace: " + name + "\n" + deps
	}
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{{
		name:  "a dependency that runs where the app does",
		files: map[string]string{"tenants/billing.yaml": billing("", "      dependsOn: [web]\n")},
	}, {
		name:  "a dangling name",
		files: map[string]string{"tenants/billing.yaml": billing("      dependsOn: [db]\n", "")},
		want:  []string{`tenants/billing.yaml:9: spec.apps[0].dependsOn[0]: tenant "billing" runs no app "db"; name one of its spec.apps`},
	}, {
		name:  "a dependency missing from one of the app's regions",
		files: map[string]string{"tenants/billing.yaml": billing("      dependsOn: [api]\n", "")},
		want:  []string{`tenants/billing.yaml:9: spec.apps[0].dependsOn[0]: app "web" runs in us-east-1, where "api" does not run; a dependency must run in every region of the app that waits for it`},
	}, {
		name:  "itself",
		files: map[string]string{"tenants/billing.yaml": billing("      dependsOn: [web]\n", "")},
		want:  []string{`tenants/billing.yaml:9: spec.apps[0].dependsOn[0]: app "web" depends on itself; remove it`},
	}, {
		name: "a cycle",
		files: map[string]string{
			"tenants/billing.yaml": "apiVersion: meridian.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: billing\nspec:\n  regions: [us-east-1]\n  apps:\n    - name: web\n      dependsOn: [api]\n    - name: api\n      dependsOn: [web]\n",
			"apps/api/app.yaml":    "apiVersion: meridian.dev/v1alpha1\nkind: App\nmetadata:\n  name: api\nspec:\n  kustomize: {path: base}\n",
		},
		want: []string{
			`tenants/billing.yaml:9: spec.apps[0].dependsOn: apps wait for each other in a cycle (web → api → web), so none would ever be applied; remove one of these dependencies`,
			`tenants/billing.yaml:11: spec.apps[1].dependsOn: apps wait for each other in a cycle (api → web → api), so none would ever be applied; remove one of these dependencies`,
		},
	}, {
		name: "addons: a dangling name and a cycle",
		files: map[string]string{
			"addons/a/addon.yaml": addon("a", "  dependsOn: [b, c]\n"), "addons/a/base/kustomization.yaml": "resources: []\n",
			"addons/b/addon.yaml": addon("b", "  dependsOn: [a]\n"), "addons/b/base/kustomization.yaml": "resources: []\n",
		},
		want: []string{
			`addons/a/addon.yaml:8: spec.dependsOn: addons wait for each other in a cycle (a → b → a), so none would ever be applied; remove one of these dependencies`,
			`addons/a/addon.yaml:8: spec.dependsOn[1]: addon "c" does not exist; create addons/c/addon.yaml or fix the name`,
			`addons/b/addon.yaml:8: spec.dependsOn: addons wait for each other in a cycle (b → a → b), so none would ever be applied; remove one of these dependencies`,
		},
	}, {
		name: "addons: a dependency that runs in fewer regions",
		files: map[string]string{
			"addons/a/addon.yaml": addon("a", "  dependsOn: [b]\n"), "addons/a/base/kustomization.yaml": "resources: []\n",
			"addons/b/addon.yaml": addon("b", "  regions: [us-east-1]\n"), "addons/b/base/kustomization.yaml": "resources: []\n",
		},
		want: []string{`addons/a/addon.yaml:8: spec.dependsOn[0]: addon "a" runs in eu-west-2, where "b" does not run; a dependency must run in every region of the addon that waits for it`},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := validFleet()
			for name, content := range tt.files {
				fsys[name] = &fstest.MapFile{Data: []byte(content)}
			}
			_, err := Load(fsys)
			var got []string
			var list ErrorList
			if errors.As(err, &list) {
				for _, e := range list {
					got = append(got, e.Error())
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}
