package kustomize

import (
	"fmt"
	"sync"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/openapi"
)

// kustomize keeps the OpenAPI schema it merges patches with in process-wide state
// and is not safe for concurrent builds, so builds take turns.
var kustomizer struct {
	sync.Mutex
	// clean is true while the global schema is kustomize's built-in default,
	// untouched since a build that left it so.
	clean bool
	// defaultVersion is what openapi.GetSchemaVersion reports for that default.
	defaultVersion string
}

// runKustomize runs kustomize on the kustomization in dir, reading only through
// fsys, with plugins other than the built-ins disabled (and Helm with them) and
// load restrictions off: bases elsewhere in the snapshot are allowed, and fsys is
// what confines reads to it.
//
// The built-in OpenAPI schema costs tens of milliseconds to parse, so it is parsed
// once and kept while builds leave it alone; it is reset before and after a build
// that names its own schema (customSchema), whose schema then adds to the built-in
// one as in Flux, and whenever something else in the process changed it, so no
// build sees another's schema. Kustomize panics on some
// malformed input; that becomes an error.
func runKustomize(fsys *snapshotFS, dir string, customSchema bool) (m resmap.ResMap, err error) {
	kustomizer.Lock()
	defer kustomizer.Unlock()
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("kustomize panicked: %v", r)
			kustomizer.clean = false
		}
	}()
	if customSchema || !kustomizer.clean || openapi.GetSchemaVersion() != kustomizer.defaultVersion {
		openapi.ResetOpenAPI()
		kustomizer.defaultVersion = openapi.GetSchemaVersion()
	}
	if customSchema {
		// As Flux does: a schema named by a kustomization adds to the built-in one.
		_ = openapi.Schema()
	}
	kustomizer.clean = !customSchema
	k := krusty.MakeKustomizer(&krusty.Options{
		LoadRestrictions: kustypes.LoadRestrictionsNone,
		PluginConfig:     kustypes.DisabledPluginConfig(),
	})
	return k.Run(fsys, dir)
}
