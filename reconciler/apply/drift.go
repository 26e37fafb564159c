package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync/atomic"

	ssaerrors "github.com/fluxcd/pkg/ssa/errors"
	"github.com/fluxcd/pkg/ssa/jsondiff"
	"github.com/fluxcd/pkg/ssa/normalize"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"meridian.dev/meridian/reconciler/live"
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
//
// With Options.Live, an object is not dry-run when its watch answers for it and
// shows Meridian's apply entry as Meridian's last apply of the same object left it
// (see unchanged): nothing Meridian applies was changed since. Only the others are
// dry-run: those the watch cannot answer for or does not hold, those whose entry
// changed (to report exactly which fields drifted, or that none did), and those
// whose entry Meridian has not recorded yet (the first check after a start).
// Drift is the same either way.
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
	count, _ := ctx.Value(driftCountKey{}).(*DriftCount)
	for i, o := range objects {
		ref := plan.RefOf(unit.Objects[i])
		desired := desiredDigest(o)
		if a.unchanged(ctx, ref, desired) {
			count.add(true)
			continue
		}
		count.add(false)
		c := a.admin
		if a.asTenant(id) && !a.asMeridian(o, scopes) {
			tc, err := a.tenant(id.Tenant)
			if err != nil {
				return nil, err
			}
			c = tc.client
		}
		dc := &dryRunClient{Client: c}
		diff, err := jsondiff.Unstructured(ctx, dc, o, jsondiff.FieldOwner(FieldManager), jsondiff.MaskSecrets(true))
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
		case jsondiff.DiffTypeUpdate, jsondiff.DiffTypeNone:
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
				a.checked(ref, desired, dc.fields)
				continue
			}
			slices.Sort(d.Fields)
			d.Fields = slices.Compact(d.Fields)
			drifts = append(drifts, d)
		}
	}
	return drifts, errors.Join(errs...)
}

// DriftCount counts, over the drift checks given it (WithDriftCount), the objects
// read from the region's watches and those dry-run. It is safe for concurrent use.
type DriftCount struct {
	watched, dryRun atomic.Int64
}

// Watched is how many objects were found not drifted from the watches alone.
func (c *DriftCount) Watched() int64 { return c.watched.Load() }

// DryRun is how many objects were dry-run (whether or not the dry run succeeded).
func (c *DriftCount) DryRun() int64 { return c.dryRun.Load() }

// add counts one object, read from the watches or dry-run; a nil c counts
// nothing.
func (c *DriftCount) add(watched bool) {
	switch {
	case c == nil:
	case watched:
		c.watched.Add(1)
	default:
		c.dryRun.Add(1)
	}
}

// driftCountKey is the context key of a *DriftCount.
type driftCountKey struct{}

// WithDriftCount returns ctx with c, which counts how the drift checks made with
// it read their objects: Drift's results stay what they are, and the count is
// reported apart (the daemon's line per drift check).
func WithDriftCount(ctx context.Context, c *DriftCount) context.Context {
	return context.WithValue(ctx, driftCountKey{}, c)
}

// appliedFields is what Meridian's last apply of one object left: desired, the
// desiredDigest of the object it applied, and fields, the AppliedFields of the
// API server's response (Meridian's entry of its managed fields as that apply
// made it).
type appliedFields struct {
	desired, fields string
}

// unchanged reports, from Options.Live and without a request, that ref has not
// drifted. It answers only when ref's watch can (synced, not failing, caught up
// with Meridian's last write of it, as health reads it), and when Meridian's last
// apply of ref was of the object now desired (desired, its desiredDigest) and
// recorded the fields it left Meridian's: ref has not drifted when its watched
// copy's entry is those fields still. Otherwise the object is dry-run, which
// tells which fields drifted, if any (another manager may have taken a field over
// with the value Meridian applies). An object absent from its watch is dry-run
// too: deleted, it is missing; stripped of the label the watch selects by, the
// dry run names the label.
//
// That rests on the API server's field management: a field Meridian applied
// that another writer changes leaves Meridian's entry, and so does a field that
// is removed. Only a write under Meridian's own field manager name by someone
// else (another daemon applying another revision, say) could change the fields'
// values and leave the entry as it was.
func (a *Applier) unchanged(ctx context.Context, ref plan.ObjectRef, desired string) bool {
	if a.opts.Live == nil || desired == "" {
		return false
	}
	a.mu.Lock()
	want, ok := a.applied[live.KeyOf(ref)]
	a.mu.Unlock()
	if !ok || want.desired != desired {
		return false
	}
	o, err := a.opts.Live.Lookup(ctx, ref)
	if err != nil || o == nil || !a.seen(ref, o.ResourceVersion()) {
		return false
	}
	return o.AppliedFields() == want.fields
}

// checked records, after a dry run found that ref has not drifted, the fields
// that dry run's apply of desired left Meridian's: the same entry the live object
// has, unless another manager took over a field with the value Meridian applies
// (then the next check dry-runs the object again). Only a dry run that found no
// drift records: one that found some says nothing of what Meridian's last real
// apply left.
func (a *Applier) checked(ref plan.ObjectRef, desired, fields string) {
	if a.opts.Live == nil || desired == "" || fields == "" {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.applied[live.KeyOf(ref)] = appliedFields{desired: desired, fields: fields}
}

// desiredDigest identifies what an apply of u asks for: a hash of u, but its
// revision annotation (a unit a later revision leaves unchanged is applied with
// another, and has not drifted for that). "" when u cannot be encoded.
func desiredDigest(u *unstructured.Unstructured) string {
	obj := maps.Clone(u.Object)
	if md, ok := obj["metadata"].(map[string]any); ok {
		if ann, ok := md["annotations"].(map[string]any); ok {
			if _, ok := ann[render.AnnotationRevision]; ok {
				ann = maps.Clone(ann)
				delete(ann, render.AnnotationRevision)
				md = maps.Clone(md)
				md["annotations"] = ann
				obj["metadata"] = md
			}
		}
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// dryRunClient is the client a drift check's dry run goes through: it keeps the
// AppliedFields of the server-side apply's response, before jsondiff normalizes
// it.
type dryRunClient struct {
	client.Client
	fields string
}

func (c *dryRunClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	if err := c.Client.Patch(ctx, obj, patch, opts...); err != nil {
		return err
	}
	if u, ok := obj.(*unstructured.Unstructured); ok && patch.Type() == types.ApplyPatchType {
		c.fields = live.AppliedFields(u)
	}
	return nil
}
