package apply_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"meridian.dev/meridian/internal/testenv/testbed"
	"meridian.dev/meridian/reconciler/apply"
	"meridian.dev/meridian/reconciler/plan"
)

// TestStoppedRegion stops a region's kube-apiserver (the whole region) and checks
// that every operation then fails transiently, naming what it was doing, so the
// daemon retries the region instead of reporting its objects as broken.
func TestStoppedRegion(t *testing.T) {
	tb := testbed.New(t, testbed.Options{Regions: 1})
	r := tb.Regions[0]
	ctx := t.Context()
	store := newStore(t, r.Config)
	applier := newApplier(t, r.Config, apply.Options{Inventory: store, PollInterval: 100 * time.Millisecond})
	ns := unit("t1", "", object("v1", "Namespace", "", "t1", nil))
	res, err := applier.Apply(ctx, ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	inv := res.Inventory
	if err := tb.Stop(); err != nil {
		t.Fatal(err)
	}

	changed := unit("t1", "", object("v1", "Namespace", "", "t1", map[string]any{"metadata": map[string]any{"labels": map[string]any{"team": "a"}}}))
	refs := []plan.ObjectRef{{Version: "v1", Kind: "Namespace", Name: "t1"}}
	refused := "dial tcp " + strings.TrimPrefix(r.Server, "https://") + ": connect: connection refused"
	tests := []struct {
		name string
		run  func() error
		want string
	}{{
		name: "apply",
		run: func() error {
			_, err := applier.Apply(ctx, changed, &inv)
			return err
		},
		want: `Namespace/t1: apply failed: Patch "` + r.Server + `/api/v1/namespaces/t1?dryRun=All&fieldManager=meridian&force=true": ` + refused,
	}, {
		name: "prune",
		run:  func() error { return applier.Prune(ctx, ns.ID(), refs) },
		want: `Namespace/t1: read before delete failed: Get "` + r.Server + `/api/v1/namespaces/t1": ` + refused,
	}, {
		name: "health",
		run: func() error {
			_, err := applier.Health(ctx, refs)
			return err
		},
		want: `Namespace/t1: read status failed: Get "` + r.Server + `/api/v1/namespaces/t1": ` + refused,
	}, {
		name: "wait",
		run: func() error {
			_, err := applier.Wait(ctx, refs, time.Second)
			return err
		},
		want: `Namespace/t1: not ready after 1s: read status failed: Get "` + r.Server + `/api/v1/namespaces/t1": ` + refused,
	}, {
		name: "drift",
		run: func() error {
			_, err := applier.Drift(ctx, changed)
			return err
		},
		want: `Namespace/t1: drift check failed: Get "` + r.Server + `/api/v1/namespaces/t1": ` + refused,
	}, {
		name: "list inventories",
		run: func() error {
			_, err := store.List(ctx)
			return err
		},
		want: `inventory: list ConfigMaps in namespace meridian-system: Get "` + r.Server + `/api/v1/namespaces/meridian-system/configmaps?labelSelector=meridian.dev%2Finventory&limit=500": ` + refused,
	}}
	for _, tt := range tests {
		t.Run(tt.name+" fails transiently", func(t *testing.T) {
			err := tt.run()
			if diff := cmp.Diff(tt.want, errString(err)); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if !apply.IsTransient(err) {
				t.Errorf("IsTransient(%v) = false, want true", err)
			}
			var e *apply.Error
			if tt.name != "list inventories" && !errors.As(err, &e) {
				t.Errorf("%T is not an *apply.Error", err)
			}
		})
	}
}
