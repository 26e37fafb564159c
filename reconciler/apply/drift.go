package apply

import (
	"context"
	"errors"
	"slices"
	"strings"

	ssaerrors "github.com/fluxcd/pkg/ssa/errors"
	"github.com/fluxcd/pkg/ssa/jsondiff"
	"github.com/fluxcd/pkg/ssa/normalize"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
)

// revisionPath is the JSON pointer of the revision annotation.
var revisionPath = "/metadata/annotations/" + strings.ReplaceAll(render.AnnotationRevision, "/", "~1")

// Drift is one object whose live state differs from what Meridian would apply.
type Drift struct {
	// Object is the object's reference.
	Object plan.ObjectRef
	// Missing reports that the object does not exist.
	Missing bool
	// Fields are the JSON patch operations that applying would make, as
	// "replace /spec/replicas": the operation and the field's path, never a value —
	// values may be decrypted secrets, in Secrets and elsewhere.
	Fields []string
}

// String names the object and its drifted fields, for logs.
func (d Drift) String() string {
	if d.Missing {
		return d.Object.String() + ": missing"
	}
	return d.Object.String() + ": " + strings.Join(d.Fields, ", ")
}

// Drift compares a unit's objects with the region: for each, a server-side dry-run
// apply under FieldManager (as the same user Apply writes it as) shows what applying
// would change, and the difference with the live object is the drift in the fields
// Meridian owns. Fields other managers own and Meridian does not set are not drift,
// nor is the revision annotation (an unchanged unit keeps the revision that applied it).
// It returns the drifted objects in the unit's order; the caller corrects them by
// applying the unit again, or only reports them. Objects that cannot be checked are
// joined into the error, each an *Error naming its object.
func (a *Applier) Drift(ctx context.Context, unit *render.Unit) ([]Drift, error) {
	id := unit.ID()
	objects := make([]*unstructured.Unstructured, len(unit.Objects))
	for i, o := range unit.Objects {
		objects[i] = o.DeepCopy()
	}
	if err := normalize.UnstructuredList(objects); err != nil {
		return nil, &Error{Object: id.String(), Op: "drift check failed", Err: err}
	}
	var (
		drifts []Drift
		errs   []error
	)
	scopes := crdScopes(objects)
	for i, o := range objects {
		ref := plan.RefOf(unit.Objects[i])
		c := a.admin
		if a.asTenant(id) && !a.asMeridian(o, scopes) {
			tc, err := a.tenant(id.Tenant)
			if err != nil {
				return nil, err
			}
			c = tc.client
		}
		diff, err := jsondiff.Unstructured(ctx, c, o, jsondiff.FieldOwner(FieldManager), jsondiff.MaskSecrets(true))
		if err != nil {
			var dryRun *ssaerrors.DryRunErr
			if errors.As(err, &dryRun) {
				err = dryRun.Unwrap()
			}
			errs = append(errs, &Error{Object: ref.String(), Op: "drift check failed", Err: err, Transient: transient(err)})
			continue
		}
		switch diff.Type {
		case jsondiff.DiffTypeCreate:
			drifts = append(drifts, Drift{Object: ref, Missing: true})
		case jsondiff.DiffTypeUpdate:
			d := Drift{Object: ref}
			for _, op := range diff.Patch {
				// A unit left unchanged by a later revision keeps the revision that
				// applied it: that annotation is not drift.
				if op.Path == revisionPath {
					continue
				}
				d.Fields = append(d.Fields, op.Type+" "+op.Path)
			}
			if len(d.Fields) == 0 {
				continue
			}
			slices.Sort(d.Fields)
			d.Fields = slices.Compact(d.Fields)
			drifts = append(drifts, d)
		}
	}
	return drifts, errors.Join(errs...)
}
