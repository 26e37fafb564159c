package apply

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/fluxcd/pkg/ssa/normalize"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/render/helm"
)

// HookStep is one hook an apply runs: its object at one event.
type HookStep struct {
	// Object is the hook's object.
	Object plan.ObjectRef
	// Event is the event it runs at.
	Event helm.HookEvent
}

// String is "Job/trucking/migrate: pre-upgrade hook".
func (s HookStep) String() string { return s.Object.String() + ": " + string(s.Event) + " hook" }

// HookResult is one hook an apply ran.
type HookResult struct {
	HookStep
	// Deleted says its delete policy removed it once it had run.
	Deleted bool
}

// Hooks returns the hooks applying unit over prev, its inventory (nil for none),
// would run, in the order it would run them (see Applier.Apply).
func Hooks(unit *render.Unit, prev *plan.Inventory) []HookStep {
	run := hooksFor(unit, prev)
	var out []HookStep
	for _, phase := range []struct {
		event helm.HookEvent
		hooks []render.Hook
	}{{run.pre, run.before}, {run.post, run.after}} {
		for _, h := range phase.hooks {
			out = append(out, HookStep{Object: plan.RefOf(h.Object), Event: phase.event})
		}
	}
	return out
}

// hookRun is what one apply does with its unit's hooks: the hooks of the event
// before the objects are written, and of the event after they are Ready.
type hookRun struct {
	pre, post   helm.HookEvent
	before      []render.Hook
	after       []render.Hook
	deleted     map[string]bool // keys of the hooks' objects their policies deleted
	ran         []HookResult
	recordedNow []plan.ObjectRef // the hooks' objects, recorded before the first is created
}

// hooksFor decides which of a unit's hooks an apply over prev runs. The unit's
// first apply in the region (prev records none that completed) is its install;
// an apply of different rendered objects (another digest) is an upgrade. An apply
// of the same objects — correcting drift, or a unit Meridian re-applies — runs
// none: hooks run for a change of the release, never because the cluster drifted.
func hooksFor(unit *render.Unit, prev *plan.Inventory) hookRun {
	run := hookRun{deleted: map[string]bool{}}
	switch {
	case len(unit.Hooks) == 0:
		return run
	case prev == nil || prev.Digest == "":
		run.pre, run.post = helm.PreInstall, helm.PostInstall
	case prev.Digest != unit.Digest:
		run.pre, run.post = helm.PreUpgrade, helm.PostUpgrade
	default:
		return run
	}
	run.before, run.after = helm.Phase(unit.Hooks, run.pre), helm.Phase(unit.Hooks, run.post)
	var refs []plan.ObjectRef
	for _, h := range slices.Concat(run.before, run.after) {
		refs = append(refs, plan.RefOf(h.Object))
	}
	run.recordedNow, _ = unionRefs(nil, refs)
	return run
}

// kept returns the hooks' objects the unit's inventory records once the apply is
// done: those recorded before and those it created, but for those their delete
// policies removed.
func (run *hookRun) kept(old []plan.ObjectRef) []plan.ObjectRef {
	all, _ := unionRefs(old, run.recordedNow)
	var out []plan.ObjectRef
	for _, r := range all {
		if !run.deleted[r.Key()] {
			out = append(out, r)
		}
	}
	return out
}

// claimHooks refuses, before anything of the unit is written, hooks whose objects
// exist and that the unit's inventory does not record: Meridian did not create
// them, and running the hook would replace or take them over. A hook's object is
// never adopted. As for the unit's objects (existing), nothing is read in a
// namespace this pass created.
func (a *Applier) claimHooks(ctx context.Context, id fleet.UnitID, run hookRun, prev *plan.Inventory) error {
	var recorded map[string]bool
	if prev != nil {
		recorded = keys(slices.Concat(prev.Objects, prev.Hooks))
	}
	a.mu.Lock()
	fresh := maps.Clone(a.created)
	a.mu.Unlock()
	var found []Existing
	for _, ref := range run.recordedNow {
		if recorded[ref.Key()] || ref.Namespace != "" && fresh[ref.Namespace] {
			continue
		}
		live, _, err := a.readExisting(ctx, id, ref, "read before hook failed")
		if err != nil {
			return err
		}
		if live != nil {
			found = append(found, describe(ref, live))
		}
	}
	if len(found) > 0 {
		return &Error{Object: id.String(), Op: "refused", Err: &RefusedError{Unit: id, Objects: found, Hooks: true}}
	}
	return nil
}

// runHooks runs the hooks of one event, in order, as Helm does: each hook's
// previous object is deleted first when its policy is before-hook-creation, the
// object is applied, and a Job or Pod is waited for until it completes; the
// others are done once applied. The first hook that fails stops the event: its
// object is deleted when its policy is hook-failed, and the error names it. Once
// every hook succeeded, those with hook-succeeded are deleted, the last first.
func (a *Applier) runHooks(ctx context.Context, id fleet.UnitID, event helm.HookEvent, hooks []render.Hook, run *hookRun) error {
	for _, h := range hooks {
		ref := plan.RefOf(h.Object)
		op := string(event) + " hook"
		if h.Deletes(helm.BeforeHookCreation) {
			if err := a.deleteHook(ctx, id, ref); err != nil {
				return err
			}
		}
		w, err := a.writerFor(id, ref)
		if err != nil {
			return &Error{Object: ref.String(), Op: op + ": apply failed", Err: err}
		}
		obj := h.Object.DeepCopy()
		if err := normalize.Unstructured(obj); err != nil {
			return &Error{Object: ref.String(), Op: op + ": apply failed", Err: err}
		}
		// Recorded as every apply is (objectClient), so that health waits for
		// the watch to hold the hook.
		if err := (objectClient{Client: w.client, wrote: a.wrote}).Patch(ctx, obj, client.Apply, client.ForceOwnership, client.FieldOwner(FieldManager)); err != nil {
			return &Error{Object: ref.String(), Op: op + ": apply failed", Err: err, Transient: transient(err)}
		}
		delete(run.deleted, ref.Key())
		result := HookResult{HookStep: HookStep{Object: ref, Event: event}}
		if err, retry := a.waitHook(ctx, w, ref); err != nil {
			if h.Deletes(helm.HookFailed) {
				if derr := a.deleteHook(ctx, id, ref); derr == nil {
					run.deleted[ref.Key()] = true
				}
			}
			return &Error{Object: ref.String(), Op: op + " failed", Err: err, Transient: retry}
		}
		run.ran = append(run.ran, result)
	}
	for i := len(run.ran) - 1; i >= 0; i-- {
		r := &run.ran[i]
		h := hookNamed(hooks, r.Object)
		if r.Event != event || h == nil || !h.Deletes(helm.HookSucceeded) {
			continue
		}
		if err := a.deleteHook(ctx, id, r.Object); err != nil {
			return err
		}
		r.Deleted = true
		run.deleted[r.Object.Key()] = true
	}
	return nil
}

// hookNamed returns the hook of hooks whose object is ref, or nil.
func hookNamed(hooks []render.Hook, ref plan.ObjectRef) *render.Hook {
	for i := range hooks {
		if plan.RefOf(hooks[i].Object).Key() == ref.Key() {
			return &hooks[i]
		}
	}
	return nil
}

// defaultHookTimeout bounds a hook's deletion, and a Job or Pod's run, when
// Options.HookTimeout is zero: Helm's default timeout.
const defaultHookTimeout = 5 * time.Minute

// deleteHook deletes a hook's object while it is still Meridian's for the unit
// (see Prune) and waits until it is gone, so that the hook can be created again.
func (a *Applier) deleteHook(ctx context.Context, id fleet.UnitID, ref plan.ObjectRef) error {
	if err := a.prune(ctx, id, ref); err != nil {
		return err
	}
	w, err := a.writerFor(id, ref)
	if err != nil {
		return &Error{Object: ref.String(), Op: "hook deletion failed", Err: err}
	}
	err, retry := a.poll(ctx, func() (bool, error) {
		live := stub(ref)
		err := w.client.Get(ctx, client.ObjectKeyFromObject(live), live)
		switch {
		case apierrors.IsNotFound(err):
			return true, nil
		case err != nil:
			return false, err
		}
		if why := notOwned(live, id); why != "" {
			return false, permanent{fmt.Errorf("it is no longer Meridian's (%s), so it was not deleted and the hook cannot run again; delete or rename it", why)}
		}
		return false, nil
	})
	if err != nil {
		return &Error{Object: ref.String(), Op: "delete before the hook runs again failed", Err: err, Transient: retry}
	}
	return nil
}

// waitHook waits until a hook's Job or Pod has completed, as Helm does; other
// kinds are done once applied. It returns why the hook failed, and whether
// trying again later may succeed.
func (a *Applier) waitHook(ctx context.Context, w writer, ref plan.ObjectRef) (err error, retry bool) {
	done := jobDone
	switch {
	case ref.Group == "batch" && ref.Kind == "Job":
	case ref.Group == "" && ref.Kind == "Pod":
		done = podDone
	default:
		return nil, false
	}
	return a.poll(ctx, func() (bool, error) {
		live := stub(ref)
		if err := w.client.Get(ctx, client.ObjectKeyFromObject(live), live); err != nil {
			return false, err
		}
		return done(live)
	})
}

// jobDone reads a Job's Complete and Failed conditions.
func jobDone(u *unstructured.Unstructured) (bool, error) {
	conditions, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conditions {
		m, _ := c.(map[string]any)
		if m["status"] != "True" {
			continue
		}
		switch m["type"] {
		case "Complete":
			return true, nil
		case "Failed":
			return false, permanent{fmt.Errorf("the Job failed: %v: %v", m["reason"], m["message"])}
		}
	}
	return false, nil
}

// podDone reads a Pod's phase.
func podDone(u *unstructured.Unstructured) (bool, error) {
	phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
	switch phase {
	case "Succeeded":
		return true, nil
	case "Failed":
		reason, _, _ := unstructured.NestedString(u.Object, "status", "reason")
		message, _, _ := unstructured.NestedString(u.Object, "status", "message")
		return false, permanent{fmt.Errorf("the Pod failed: %s: %s", reason, message)}
	}
	return false, nil
}

// permanent marks a condition poll stops at.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// poll calls check until it reports done, fails for good (a permanent error, or
// one that is not transient), or the hook timeout passes; its reads come as
// Wait's do, sooner at first. It returns the error that stopped it, and whether
// trying again later may succeed.
func (a *Applier) poll(ctx context.Context, check func() (bool, error)) (err error, retry bool) {
	deadline := time.Now().Add(a.opts.HookTimeout)
	interval := a.opts.PollInterval / 8
	for {
		ok, err := check()
		var p permanent
		switch {
		case ok:
			return nil, false
		case errors.As(err, &p):
			return p.error, false
		case err != nil && !transient(err):
			return err, false
		}
		more, cerr := a.pause(ctx, &interval, deadline)
		if cerr != nil {
			return cerr, true
		}
		if !more {
			if err == nil {
				err = fmt.Errorf("not done after %s", a.opts.HookTimeout)
			}
			return err, true
		}
	}
}
