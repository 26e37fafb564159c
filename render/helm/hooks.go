package helm

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"helm.sh/helm/v3/pkg/release"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// HookEvent is a point of a release's life at which Meridian runs a chart's hooks.
type HookEvent string

// The hook events Meridian runs. A unit's first apply in a region is its install;
// each later apply of different rendered objects is an upgrade. Re-applying the
// same objects (drift correction) is neither.
const (
	PreInstall  HookEvent = HookEvent(release.HookPreInstall)
	PostInstall HookEvent = HookEvent(release.HookPostInstall)
	PreUpgrade  HookEvent = HookEvent(release.HookPreUpgrade)
	PostUpgrade HookEvent = HookEvent(release.HookPostUpgrade)
)

// HookDeletePolicy says when a hook's object is deleted (helm.sh/hook-delete-policy).
type HookDeletePolicy string

// The delete policies Helm defines.
const (
	// BeforeHookCreation deletes the previous object before the hook runs again. It
	// is the policy of a hook that names none.
	BeforeHookCreation HookDeletePolicy = HookDeletePolicy(release.HookBeforeHookCreation)
	// HookSucceeded deletes the object once every hook of its phase succeeded.
	HookSucceeded HookDeletePolicy = HookDeletePolicy(release.HookSucceeded)
	// HookFailed deletes the object when the hook failed.
	HookFailed HookDeletePolicy = HookDeletePolicy(release.HookFailed)
)

// Hook is an object a chart renders for a point of its release's life (annotated
// helm.sh/hook) rather than as part of the release: applied then, waited for
// when it is a Job or a Pod, and deleted as its policies say.
type Hook struct {
	// Object is the hook's object.
	Object *unstructured.Unstructured
	// Events are the events it runs at, among PreInstall, PostInstall, PreUpgrade and
	// PostUpgrade; never empty.
	Events []HookEvent
	// Weight orders the hooks of one event, lowest first (helm.sh/hook-weight; 0
	// when absent or not an integer, as Helm reads it).
	Weight int
	// DeletePolicies are the hook's delete policies; BeforeHookCreation alone
	// when the chart names none, as Helm does.
	DeletePolicies []HookDeletePolicy
}

// RunsAt reports whether the hook runs at event e.
func (h Hook) RunsAt(e HookEvent) bool { return slices.Contains(h.Events, e) }

// Deletes reports whether the hook has delete policy p.
func (h Hook) Deletes(p HookDeletePolicy) bool { return slices.Contains(h.DeletePolicies, p) }

// IsHook reports whether a rendered object is one of a chart's hooks.
func IsHook(obj *unstructured.Unstructured) bool {
	_, ok := obj.GetAnnotations()[release.HookAnnotation]
	return ok
}

// Hooks separates a chart's hooks from the rest of what Render returned, keeping
// the order of each. Render already dropped the hooks Meridian never applies
// (see the package documentation).
func Hooks(objects []*unstructured.Unstructured) (rest []*unstructured.Unstructured, hooks []Hook) {
	for _, o := range objects {
		h, ok := hookOf(o)
		if !ok {
			rest = append(rest, o)
			continue
		}
		hooks = append(hooks, h)
	}
	return rest, hooks
}

// hookOf reads an object's hook annotations as Helm does: events and policies
// comma-separated, trimmed and lower-cased. It returns false for an object that
// is not a hook, or whose events are none that Meridian runs.
func hookOf(o *unstructured.Unstructured) (Hook, bool) {
	a := o.GetAnnotations()
	events, ok := a[release.HookAnnotation]
	if !ok {
		return Hook{}, false
	}
	h := Hook{Object: o}
	for _, e := range annotationValues(events) {
		switch ev := HookEvent(e); ev {
		case PreInstall, PostInstall, PreUpgrade, PostUpgrade:
			h.Events = append(h.Events, ev)
		}
	}
	if len(h.Events) == 0 {
		return Hook{}, false
	}
	h.Weight, _ = strconv.Atoi(a[release.HookWeightAnnotation])
	for _, p := range annotationValues(a[release.HookDeleteAnnotation]) {
		h.DeletePolicies = append(h.DeletePolicies, HookDeletePolicy(p))
	}
	if len(h.DeletePolicies) == 0 {
		h.DeletePolicies = []HookDeletePolicy{BeforeHookCreation}
	}
	return h, true
}

// annotationValues splits a comma-separated annotation as Helm does.
func annotationValues(v string) []string {
	if strings.TrimSpace(v) == "" {
		return nil
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		out = append(out, strings.ToLower(strings.TrimSpace(s)))
	}
	return out
}

// Phase returns the hooks that run at event e, in the order Helm runs them: by
// weight, then name, keeping hooks' order otherwise.
func Phase(hooks []Hook, e HookEvent) []Hook {
	var out []Hook
	for _, h := range hooks {
		if h.RunsAt(e) {
			out = append(out, h)
		}
	}
	slices.SortStableFunc(out, func(a, b Hook) int {
		return cmp.Or(cmp.Compare(a.Weight, b.Weight), strings.Compare(a.Object.GetName(), b.Object.GetName()))
	})
	return out
}
