package render

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/internal/version"
)

// Names of the isolation objects Meridian creates in every tenant namespace. Tenant
// apps may not render objects of the same kind and name.
const (
	TenantServiceAccount = "meridian-tenant"
	quotaName            = "meridian-quota"
	limitRangeName       = "meridian-limits"
	networkPolicyName    = "meridian-isolation"
)

// tenantRules are what a tenant's ServiceAccount may do in its own namespace. They
// leave out ResourceQuota, LimitRange and NetworkPolicy, so a tenant's apps cannot
// loosen the isolation Meridian put around them, and nothing outside the namespace.
var tenantRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"configmaps", "secrets", "services", "serviceaccounts", "persistentvolumeclaims", "pods", "pods/log", "endpoints", "events"}, Verbs: []string{"*"}},
	{APIGroups: []string{"apps", "batch", "autoscaling"}, Resources: []string{"*"}, Verbs: []string{"*"}},
	{APIGroups: []string{"policy"}, Resources: []string{"poddisruptionbudgets"}, Verbs: []string{"*"}},
	{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingresses"}, Verbs: []string{"*"}},
	{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"roles", "rolebindings"}, Verbs: []string{"*"}},
	{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"get", "list", "watch"}},
}

// rulesOf returns the rules of a tenant's Role: tenantRules, and every verb on the
// custom resources the tenant is granted (spec.customResources).
func rulesOf(grants []fleet.CustomResourceGrant) []rbacv1.PolicyRule {
	rules := slices.Clone(tenantRules)
	for _, g := range grants {
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{g.Group}, Resources: slices.Clone(g.Resources), Verbs: []string{"*"}})
	}
	return rules
}

// isolationInputs are everything a tenant's isolation objects in a region are
// built from, and so the key of their entry in the render cache: isolation reads
// nothing else. Their JSON encoding is canonical.
type isolationInputs struct {
	Meridian          string                      `json:"meridian"`
	Namespace         string                      `json:"namespace"`
	IngressNamespace  string                      `json:"ingressNamespace"`
	Quota             *fleet.Quota                `json:"quota,omitempty"`
	ContainerDefaults *fleet.ContainerDefaults    `json:"containerDefaults,omitempty"`
	CustomResources   []fleet.CustomResourceGrant `json:"customResources,omitempty"`
}

// isolationOf returns the inputs of a tenant's isolation objects in a region.
func isolationOf(t *fleet.Tenant, r *fleet.Region) isolationInputs {
	ingressNS := r.Spec.IngressNamespace
	if ingressNS == "" {
		ingressNS = fleet.DefaultIngressNamespace
	}
	return isolationInputs{
		Meridian: version.Version, Namespace: t.Metadata.Name, IngressNamespace: ingressNS,
		Quota: t.Spec.Quota, ContainerDefaults: t.Spec.ContainerDefaults, CustomResources: t.Spec.CustomResources,
	}
}

// digest is the cache key of the isolation objects built from in; a
// "namespaceUnit" field keeps it apart from any placement's.
func (in isolationInputs) digest() (string, error) {
	data, err := json.Marshal(struct {
		Namespace isolationInputs `json:"namespaceUnit"`
	}{in})
	if err != nil {
		return "", err
	}
	return digestBytes(data), nil
}

// isolation returns the objects that make a tenant's namespace in one region an
// isolated environment: the Namespace, its ResourceQuota and LimitRange (when the
// tenant sets them), a NetworkPolicy that lets in only the namespace itself and the
// region's ingress controller, and a ServiceAccount with a Role and RoleBinding that
// confine the tenant's objects to the namespace. They are built from in alone; t
// only locates errors in the tenant's file.
func isolation(t *fleet.Tenant, in isolationInputs) ([]*unstructured.Unstructured, error) {
	ns := in.Namespace
	ingressNS := in.IngressNamespace
	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: ns} }

	objects := []runtime.Object{
		&corev1.Namespace{
			TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{
				// Pod Security: refuse privileged pods, warn about what restricted would refuse.
				"pod-security.kubernetes.io/enforce": "baseline",
				"pod-security.kubernetes.io/warn":    "restricted",
			}},
		},
		&networkingv1.NetworkPolicy{
			TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
			ObjectMeta: meta(networkPolicyName),
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{},
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
				Ingress: []networkingv1.NetworkPolicyIngressRule{
					{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}},
					{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{
						MatchLabels: map[string]string{corev1.LabelMetadataName: ingressNS},
					}}}},
				},
			},
		},
		&corev1.ServiceAccount{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
			ObjectMeta: meta(TenantServiceAccount),
		},
		&rbacv1.Role{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
			ObjectMeta: meta(TenantServiceAccount),
			Rules:      rulesOf(in.CustomResources),
		},
		&rbacv1.RoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
			ObjectMeta: meta(TenantServiceAccount),
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: TenantServiceAccount},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: TenantServiceAccount, Namespace: ns}},
		},
	}
	if q := in.Quota; q != nil && len(q.Hard) > 0 {
		hard, err := resourceList(q.Hard)
		if err != nil {
			return nil, fmt.Errorf("%s: spec.quota.hard: %w", t.Source.Position("spec.quota.hard"), err)
		}
		objects = append(objects, &corev1.ResourceQuota{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ResourceQuota"},
			ObjectMeta: meta(quotaName),
			Spec:       corev1.ResourceQuotaSpec{Hard: hard},
		})
	}
	if d := in.ContainerDefaults; d != nil && (len(d.Requests) > 0 || len(d.Limits) > 0) {
		requests, err := resourceList(d.Requests)
		if err != nil {
			return nil, fmt.Errorf("%s: spec.containerDefaults.requests: %w", t.Source.Position("spec.containerDefaults"), err)
		}
		limits, err := resourceList(d.Limits)
		if err != nil {
			return nil, fmt.Errorf("%s: spec.containerDefaults.limits: %w", t.Source.Position("spec.containerDefaults"), err)
		}
		objects = append(objects, &corev1.LimitRange{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "LimitRange"},
			ObjectMeta: meta(limitRangeName),
			Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
				Type:           corev1.LimitTypeContainer,
				Default:        limits,
				DefaultRequest: requests,
			}}},
		})
	}

	out := make([]*unstructured.Unstructured, 0, len(objects))
	for _, obj := range objects {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return nil, fmt.Errorf("tenant %s: build %T: %w", ns, obj, err)
		}
		delete(u["metadata"].(map[string]any), "creationTimestamp")
		delete(u, "status")
		out = append(out, &unstructured.Unstructured{Object: u})
	}
	return out, nil
}

func resourceList(m map[string]string) (corev1.ResourceList, error) {
	if len(m) == 0 {
		return nil, nil
	}
	out := corev1.ResourceList{}
	for _, name := range slices.Sorted(maps.Keys(m)) {
		q, err := resource.ParseQuantity(m[name])
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a quantity", name, m[name])
		}
		out[corev1.ResourceName(name)] = q
	}
	return out, nil
}
