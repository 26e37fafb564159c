package render

import (
	"errors"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"meridian.dev/meridian/fleet"
)

// Labels and annotations Meridian puts on every object it renders, so that any object
// in a cluster can be traced back to the tenant, region, app and revision it came from.
const (
	LabelManagedBy      = "app.kubernetes.io/managed-by"
	ManagedByMeridian   = "meridian"
	LabelTenant         = "meridian.dev/tenant"
	LabelRegion         = "meridian.dev/region"
	LabelApp            = "meridian.dev/app"
	LabelAddon          = "meridian.dev/addon"
	AnnotationRevision  = "meridian.dev/revision"
	AnnotationPlacement = "meridian.dev/placement"
)

// clusterScopedKinds are the built-in Kubernetes kinds that have no namespace. Kinds
// of CustomResourceDefinitions rendered with an app are looked up in the CRDs themselves.
var clusterScopedKinds = map[schema.GroupKind]bool{
	{Group: "", Kind: "Namespace"}:                                                    true,
	{Group: "", Kind: "Node"}:                                                         true,
	{Group: "", Kind: "PersistentVolume"}:                                             true,
	{Group: "", Kind: "ComponentStatus"}:                                              true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}:                         true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}:                  true,
	{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}:                 true,
	{Group: "apiregistration.k8s.io", Kind: "APIService"}:                             true,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingWebhookConfiguration"}:   true,
	{Group: "admissionregistration.k8s.io", Kind: "MutatingWebhookConfiguration"}:     true,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicy"}:        true,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicyBinding"}: true,
	{Group: "admissionregistration.k8s.io", Kind: "MutatingAdmissionPolicy"}:          true,
	{Group: "admissionregistration.k8s.io", Kind: "MutatingAdmissionPolicyBinding"}:   true,
	{Group: "storage.k8s.io", Kind: "StorageClass"}:                                   true,
	{Group: "storage.k8s.io", Kind: "CSIDriver"}:                                      true,
	{Group: "storage.k8s.io", Kind: "CSINode"}:                                        true,
	{Group: "storage.k8s.io", Kind: "VolumeAttachment"}:                               true,
	{Group: "storage.k8s.io", Kind: "VolumeAttributesClass"}:                          true,
	{Group: "scheduling.k8s.io", Kind: "PriorityClass"}:                               true,
	{Group: "node.k8s.io", Kind: "RuntimeClass"}:                                      true,
	{Group: "networking.k8s.io", Kind: "IngressClass"}:                                true,
	{Group: "networking.k8s.io", Kind: "IPAddress"}:                                   true,
	{Group: "networking.k8s.io", Kind: "ServiceCIDR"}:                                 true,
	{Group: "certificates.k8s.io", Kind: "CertificateSigningRequest"}:                 true,
	{Group: "certificates.k8s.io", Kind: "ClusterTrustBundle"}:                        true,
	{Group: "flowcontrol.apiserver.k8s.io", Kind: "FlowSchema"}:                       true,
	{Group: "flowcontrol.apiserver.k8s.io", Kind: "PriorityLevelConfiguration"}:       true,
	{Group: "resource.k8s.io", Kind: "DeviceClass"}:                                   true,
	{Group: "resource.k8s.io", Kind: "ResourceSlice"}:                                 true,
}

// reservedNames are the isolation objects of a tenant namespace; an app that renders
// an object of the same kind and name would replace them.
var reservedNames = map[schema.GroupKind]string{
	{Group: "", Kind: "ServiceAccount"}:                       TenantServiceAccount,
	{Group: "rbac.authorization.k8s.io", Kind: "Role"}:        TenantServiceAccount,
	{Group: "rbac.authorization.k8s.io", Kind: "RoleBinding"}: TenantServiceAccount,
	{Group: "", Kind: "ResourceQuota"}:                        quotaName,
	{Group: "", Kind: "LimitRange"}:                           limitRangeName,
	{Group: "networking.k8s.io", Kind: "NetworkPolicy"}:       networkPolicyName,
}

// ObjectRef names an object as Kind/namespace/name (or Kind/name when it has no
// namespace), the form every error about an object starts with.
func ObjectRef(u *unstructured.Unstructured) string {
	if ns := u.GetNamespace(); ns != "" {
		return u.GetKind() + "/" + ns + "/" + u.GetName()
	}
	return u.GetKind() + "/" + u.GetName()
}

// confine puts every namespaced object of a placement that names no namespace into
// the tenant's namespace, and refuses one that names another namespace (it is never
// moved), cluster-scoped objects that the app does not explicitly allow, and
// objects that would replace the namespace's isolation objects.
func confine(objects []*unstructured.Unstructured, namespace string, allowClusterScoped []string) error {
	crdScoped := clusterScopedCRDs(objects)
	for _, u := range objects {
		gk := u.GroupVersionKind().GroupKind()
		if clusterScopedKinds[gk] || crdScoped[gk] {
			if !slices.Contains(allowClusterScoped, gk.Kind) {
				return &ObjectError{Object: ObjectRef(u), Err: fmt.Errorf("cluster-scoped kind %s is refused for tenant apps; if the app must create it, add %q to the app's spec.allowClusterScoped", gk.Kind, gk.Kind)}
			}
			u.SetNamespace("")
			continue
		}
		if asked := u.GetNamespace(); asked != "" && asked != namespace {
			// Moving it would leave whatever refers to that namespace (a
			// RoleBinding's subjects, an APIService's service, a flag) pointing
			// at the old one: the object would apply and the app would not work.
			return &ObjectError{Object: ObjectRef(u), Err: fmt.Errorf("the object asks for namespace %q, but a tenant's app writes only into the tenant's namespace %q; "+
				"leave the namespace out (or set it to the release namespace) so that Meridian puts it in %q, or run the component as a platform addon rather than a tenant app", asked, namespace, namespace)}
		}
		u.SetNamespace(namespace)
		if name, ok := reservedNames[gk]; ok && u.GetName() == name {
			return &ObjectError{Object: ObjectRef(u), Err: errors.New("the name is reserved for the tenant namespace's isolation object; rename it")}
		}
	}
	return nil
}

// confineAddon puts every namespaced object of an addon that names no namespace
// into the addon's namespace, and refuses one in a namespace the addon does not
// name (spec.namespace, spec.namespaces), and a Namespace object of a tenant or of
// Meridian: an addon is a platform component, and tenants' namespaces are theirs
// (tenant finds a tenant by name, as fleet.Model.Tenant does).
// Cluster-scoped objects, CustomResourceDefinitions included, are what addons are
// for and are let through.
func confineAddon(objects []*unstructured.Unstructured, a *fleet.Addon, tenant func(name string) *fleet.Tenant) error {
	crdScoped := clusterScopedCRDs(objects)
	for _, u := range objects {
		gk := u.GroupVersionKind().GroupKind()
		if clusterScopedKinds[gk] || crdScoped[gk] {
			u.SetNamespace("")
			if gk == (schema.GroupKind{Kind: "Namespace"}) {
				switch name := u.GetName(); {
				case name == fleet.SystemNamespace:
					return &ObjectError{Object: ObjectRef(u), Err: fmt.Errorf("%s is Meridian's own namespace; an addon may not write it", name)}
				case tenant(name) != nil:
					return &ObjectError{Object: ObjectRef(u), Err: fmt.Errorf("%s is tenant %s's namespace; an addon may not write it, rename the namespace", name, name)}
				case !a.WritesNamespace(name):
					return &ObjectError{Object: ObjectRef(u), Err: fmt.Errorf("the addon writes namespace %s but does not name it; add it to the addon's spec.namespaces", name)}
				}
			}
			continue
		}
		ns := u.GetNamespace()
		if ns == "" {
			u.SetNamespace(a.Spec.Namespace)
			continue
		}
		if !a.WritesNamespace(ns) {
			return &ObjectError{Object: ObjectRef(u), Err: fmt.Errorf("the object is in namespace %q, which the addon does not name; add %q to the addon's spec.namespaces, or leave the namespace out so that Meridian puts it in %q", ns, ns, a.Spec.Namespace)}
		}
	}
	return nil
}

// clusterScopedCRDs returns the kinds the objects' CustomResourceDefinitions
// define, true for those that are cluster-scoped.
func clusterScopedCRDs(objects []*unstructured.Unstructured) map[schema.GroupKind]bool {
	out := map[schema.GroupKind]bool{}
	for _, u := range objects {
		if u.GroupVersionKind().GroupKind() == (schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}) {
			group, _, _ := unstructured.NestedString(u.Object, "spec", "group")
			kind, _, _ := unstructured.NestedString(u.Object, "spec", "names", "kind")
			scope, _, _ := unstructured.NestedString(u.Object, "spec", "scope")
			out[schema.GroupKind{Group: group, Kind: kind}] = scope == "Cluster"
		}
	}
	return out
}

// label marks objects with where they came from.
func label(objects []*unstructured.Unstructured, unit fleet.UnitID, revision string) {
	for _, u := range objects {
		labels := u.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[LabelManagedBy] = ManagedByMeridian
		labels[LabelRegion] = unit.Region
		switch {
		case unit.IsAddon():
			labels[LabelAddon] = unit.Addon
		case unit.IsNamespace():
			labels[LabelTenant] = unit.Tenant
		default:
			labels[LabelTenant] = unit.Tenant
			labels[LabelApp] = unit.App
		}
		u.SetLabels(labels)
		annotations := u.GetAnnotations()
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[AnnotationPlacement] = unit.String()
		if revision != "" {
			annotations[AnnotationRevision] = revision
		}
		u.SetAnnotations(annotations)
	}
}
