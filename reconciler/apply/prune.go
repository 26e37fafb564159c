package apply

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/fluxcd/pkg/ssa"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
)

// pruneAttempts bounds how often Prune re-reads an object that changed between its
// ownership check and its deletion.
const pruneAttempts = 3

// Prune deletes the objects refs names for a unit, each only when its labels and
// annotation still say Meridian manages it for that unit (render's
// app.kubernetes.io/managed-by, meridian.dev/tenant, meridian.dev/region,
// meridian.dev/app and meridian.dev/placement). An object that someone else now owns
// is left in place and logged; one that no longer exists counts as pruned. Deletion
// is conditional on the object's UID and resourceVersion as checked, so an object
// relabelled in between is not deleted either. Deletions are background: Prune does
// not wait for namespaces to finish terminating.
//
// A placement's namespaced objects are read and deleted as the tenant (TenantUser),
// so an inventory can never make Meridian delete outside the tenant's namespace; an
// object the tenant may not read is not the tenant's and is left in place.
//
// A namespace is deleted only while it holds nothing Meridian did not create (see
// ForeignObjectsError): deleting it would delete everything in it.
//
// Objects are deleted in the reverse of the apply order. A failure does not stop the
// others; the failures are joined, each an *Error naming its object.
func (a *Applier) Prune(ctx context.Context, id fleet.UnitID, refs []plan.ObjectRef) error {
	objects := make([]*unstructured.Unstructured, len(refs))
	for i, r := range refs {
		objects[i] = stub(r)
	}
	sort.Stable(sort.Reverse(ssa.SortableUnstructureds(objects)))
	var errs []error
	for _, o := range objects {
		if err := a.prune(ctx, id, plan.RefOf(o)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// prune deletes one object if the unit still owns it.
func (a *Applier) prune(ctx context.Context, id fleet.UnitID, ref plan.ObjectRef) error {
	return a.ifOwned(ctx, id, ref, deletion, func(c client.Client, live *unstructured.Unstructured) error {
		if ref.Group == "" && ref.Kind == "Namespace" {
			foreign, err := a.foreignObjects(ctx, ref.Name)
			switch {
			case err != nil:
				return &Error{Object: ref.String(), Op: "read before delete failed", Err: err, Transient: transient(err)}
			case foreign != nil:
				return &Error{Object: ref.String(), Op: "delete refused", Err: foreign}
			}
		}
		uid, rv := live.GetUID(), live.GetResourceVersion()
		return c.Delete(ctx, live,
			client.Preconditions(metav1.Preconditions{UID: &uid, ResourceVersion: &rv}),
			client.PropagationPolicy(metav1.DeletePropagationBackground))
	})
}

// ownedOp names what ifOwned does, for its errors and log lines.
type ownedOp struct{ verb, noun, done string }

var (
	deletion = ownedOp{verb: "delete", noun: "deletion", done: "pruned"}
	release  = ownedOp{verb: "release", noun: "release", done: "released"}
)

// ifOwned reads ref as the user that writes it for the unit and, while the unit
// still owns it, does act to it: a deletion or a release, conditional on what was
// read. An object changed in between is read and checked again; one already gone
// counts as done; one no longer the unit's, or that the tenant may not read, is
// left in place and logged.
func (a *Applier) ifOwned(ctx context.Context, id fleet.UnitID, ref plan.ObjectRef, op ownedOp, act func(client.Client, *unstructured.Unstructured) error) error {
	w, err := a.writerFor(id, ref)
	if err != nil {
		return &Error{Object: ref.String(), Op: op.verb + " failed", Err: err}
	}
	for range pruneAttempts {
		live := stub(ref)
		err := w.client.Get(ctx, client.ObjectKeyFromObject(live), live)
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case w.tenant && apierrors.IsForbidden(err):
			a.opts.Logger.Info("not "+op.done+": the tenant may not read it, so it is not the tenant's", "unit", id, "object", ref.String())
			return nil
		case err != nil:
			return &Error{Object: ref.String(), Op: "read before " + op.verb + " failed", Err: err, Transient: transient(err)}
		}
		if why := notOwned(live, id); why != "" {
			a.opts.Logger.Info("not "+op.done+": no longer Meridian's for this unit", "unit", id, "object", ref.String(), "reason", why)
			return nil
		}
		err = act(w.client, live)
		var refused *Error
		switch {
		case err == nil, apierrors.IsNotFound(err):
			return nil
		case apierrors.IsConflict(err):
			continue // changed since the check: check again
		case errors.As(err, &refused):
			return err // act said what failed
		default:
			return &Error{Object: ref.String(), Op: op.verb + " failed", Err: err, Transient: transient(err)}
		}
	}
	return &Error{Object: ref.String(), Op: op.verb + " failed",
		Err: fmt.Errorf("the object kept changing between its ownership check and its %s (%d attempts)", op.noun, pruneAttempts), Transient: true}
}

// notOwned says why an object is not the unit's to delete, or returns "".
func notOwned(u *unstructured.Unstructured, id fleet.UnitID) string {
	labels := u.GetLabels()
	check := []struct{ key, want string }{
		{render.LabelManagedBy, render.ManagedByMeridian},
		{render.LabelTenant, id.Tenant},
		{render.LabelRegion, id.Region},
		{render.LabelApp, id.App},
		{render.LabelAddon, id.Addon},
	}
	for _, c := range check {
		if got := labels[c.key]; got != c.want {
			return fmt.Sprintf("label %s is %q, not %q", c.key, got, c.want)
		}
	}
	if got := u.GetAnnotations()[render.AnnotationPlacement]; got != id.String() {
		return fmt.Sprintf("annotation %s is %q, not %q", render.AnnotationPlacement, got, id)
	}
	return ""
}
