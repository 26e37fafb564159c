package apply

import (
	"context"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/metadata"

	"meridian.dev/meridian/render"
)

// maxForeignNamed bounds the objects a ForeignObjectsError names.
const maxForeignNamed = 10

// ForeignObjectsError refuses the deletion of a namespace Meridian created because
// it holds objects Meridian did not create: deleting the namespace would delete them
// too. The namespace and its unit stay as they are; once those objects are gone (or
// moved), the next pass deletes the namespace.
type ForeignObjectsError struct {
	// Namespace is the namespace that was not deleted.
	Namespace string
	// Objects names up to ten of the foreign objects, Kind/namespace/name.
	Objects []string
	// Total counts them all.
	Total int
}

func (e *ForeignObjectsError) Error() string {
	named := strings.Join(e.Objects, ", ")
	if e.Total > len(e.Objects) {
		named += fmt.Sprintf(" and %d more", e.Total-len(e.Objects))
	}
	return fmt.Sprintf("namespace %s holds %d object(s) Meridian did not create (%s): deleting the namespace would delete them; delete or move them, and the next pass deletes the namespace", e.Namespace, e.Total, named)
}

// foreignObjects lists what namespace holds that Meridian did not create and that
// would not go away with what it created: every object of every namespaced kind the
// region serves, less Meridian's own (its managed-by label), those a controller made
// for an owner (ownerReferences: Pods of a ReplicaSet, a Job's Pods), those already
// being deleted, and what Kubernetes itself puts in every namespace or makes for a
// Service (the default ServiceAccount, kube-root-ca.crt, Endpoints, EndpointSlices,
// Events). A kind that cannot be listed, or discovery that fails for some group,
// is an error: the namespace is kept rather than deleted blind.
func (a *Applier) foreignObjects(ctx context.Context, namespace string) (*ForeignObjectsError, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(a.config)
	if err != nil {
		return nil, err
	}
	lists, err := dc.ServerPreferredNamespacedResources()
	if err != nil {
		return nil, fmt.Errorf("discover the kinds namespace %s may hold: %w", namespace, err)
	}
	mc, err := metadata.NewForConfig(a.config)
	if err != nil {
		return nil, err
	}
	found := &ForeignObjectsError{Namespace: namespace}
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			return nil, err
		}
		for _, r := range list.APIResources {
			if !slices.Contains(r.Verbs, "list") || strings.Contains(r.Name, "/") || kubernetesMade(gv.Group, r.Kind, "") {
				continue
			}
			opts := metav1.ListOptions{Limit: 500}
			for {
				objs, err := mc.Resource(gv.WithResource(r.Name)).Namespace(namespace).List(ctx, opts)
				if err != nil {
					return nil, fmt.Errorf("list %s in namespace %s: %w", r.Name, namespace, err)
				}
				for _, o := range objs.Items {
					if o.Labels[render.LabelManagedBy] == render.ManagedByMeridian || len(o.OwnerReferences) > 0 ||
						o.DeletionTimestamp != nil || kubernetesMade(gv.Group, r.Kind, o.Name) {
						continue
					}
					if found.Total++; len(found.Objects) < maxForeignNamed {
						found.Objects = append(found.Objects, r.Kind+"/"+namespace+"/"+o.Name)
					}
				}
				if opts.Continue = objs.Continue; opts.Continue == "" {
					break
				}
			}
		}
	}
	if found.Total == 0 {
		return nil, nil
	}
	return found, nil
}

// kubernetesMade reports whether Kubernetes makes objects of this kind, or this
// object (name non-empty), by itself in a namespace: Events and a Service's
// Endpoints and EndpointSlices for any name, and the default ServiceAccount and
// the kube-root-ca.crt ConfigMap by name.
func kubernetesMade(group, kind, name string) bool {
	switch {
	case kind == "Event" && (group == "" || group == "events.k8s.io"),
		kind == "Endpoints" && group == "",
		kind == "EndpointSlice" && group == "discovery.k8s.io":
		return true
	case name == "":
		return false
	case group == "" && kind == "ServiceAccount":
		return name == "default"
	case group == "" && kind == "ConfigMap":
		return name == "kube-root-ca.crt"
	}
	return false
}
