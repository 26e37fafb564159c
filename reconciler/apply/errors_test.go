package apply

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"syscall"
	"testing"

	"github.com/fluxcd/pkg/ssa"
	ssaerrors "github.com/fluxcd/pkg/ssa/errors"
	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler/plan"
)

func TestIsTransient(t *testing.T) {
	gr := schema.GroupResource{Group: "apps", Resource: "deployments"}
	refused := &url.Error{Op: "Patch", URL: "https://127.0.0.1:6443/x", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"a refused connection is retried", refused, true},
		{"a reset connection is retried", &url.Error{Op: "Get", URL: "u", Err: &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}}, true},
		{"an unexpected EOF is retried", &url.Error{Op: "Get", URL: "u", Err: io.ErrUnexpectedEOF}, true},
		{"a deadline is retried", fmt.Errorf("wait: %w", context.DeadlineExceeded), true},
		{"a conflict is retried", apierrors.NewConflict(gr, "web", errors.New("modified")), true},
		{"a server timeout is retried", apierrors.NewServerTimeout(gr, "patch", 1), true},
		{"a gateway timeout is retried", apierrors.NewTimeoutError("slow", 1), true},
		{"too many requests are retried", apierrors.NewTooManyRequests("slow down", 1), true},
		{"an internal error is retried", apierrors.NewInternalError(errors.New("etcd")), true},
		{"an unavailable server is retried", apierrors.NewServiceUnavailable("starting"), true},
		{"a 502 is retried", apierrors.NewGenericServerResponse(502, "patch", gr, "web", "bad gateway", 0, true), true},
		{"an invalid object is reported", apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "web", field.ErrorList{field.Required(field.NewPath("spec"), "")}), false},
		{"a refusal by RBAC is reported", apierrors.NewForbidden(gr, "web", errors.New("no")), false},
		{"a bad request is reported", apierrors.NewBadRequest("nonsense"), false},
		{"a missing namespace is reported", apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, "t1"), false},
		{"bad credentials are reported", apierrors.NewUnauthorized("who are you"), false},
		{"an untrusted certificate is reported", &url.Error{Op: "Get", URL: "u", Err: x509.UnknownAuthorityError{}}, false},
		{"an unknown kind is reported", &meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: "x.dev", Kind: "Widget"}, SearchedVersions: []string{"v1"}}, false},
		{"an unknown failure is reported", errors.New("something odd"), false},
		{"an Error says for itself", &Error{Object: "ConfigMap/t/x", Op: "apply failed", Err: errors.New("odd"), Transient: true}, true},
		{"joined transient errors are retried", errors.Join(refused, apierrors.NewConflict(gr, "web", errors.New("modified"))), true},
		{"one permanent error among joined ones is reported", errors.Join(refused, apierrors.NewForbidden(gr, "web", errors.New("no"))), false},
		{"no error is not transient", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsTransient(tt.err); got != tt.want {
				t.Errorf("IsTransient(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestHealthUnknown(t *testing.T) {
	refused := &url.Error{Op: "Get", URL: "https://127.0.0.1:6443/x", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"a read that kept failing until the timeout", &Error{Object: "Deployment/t/web", Op: "not ready after 5m0s: read", Err: refused, Transient: true}, true},
		{"a failed read", &Error{Object: "Deployment/t/web", Op: "read", Err: refused, Transient: true}, true},
		{"objects read and still not ready at the timeout", &Error{Object: "Deployment/t/web", Op: "not ready after 5m0s", Err: errors.New("InProgress: 0 of 2 replicas available"), Transient: true}, false},
		{"objects read and failed", &Error{Object: "Deployment/t/web", Op: "failed", Err: errors.New("Failed: progress deadline exceeded")}, false},
		{"the pass canceled", context.Canceled, true},
		{"no error", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HealthUnknown(tt.err); got != tt.want {
				t.Errorf("HealthUnknown(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// cluster is what the ssa library sees of a cluster in TestObjectError: Get finds
// live, or nothing; dry runs pass unless dryRun is set; applies fail with apply,
// deletes with del. The library calls nothing else while applying.
type cluster struct {
	client.Client
	live               *unstructured.Unstructured
	dryRun, apply, del error
}

func (c cluster) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	if c.live == nil {
		return apierrors.NewNotFound(schema.GroupResource{Group: "apps", Resource: "deployments"}, key.Name)
	}
	c.live.DeepCopyInto(obj.(*unstructured.Unstructured))
	return nil
}

func (c cluster) Patch(_ context.Context, _ client.Object, _ client.Patch, opts ...client.PatchOption) error {
	if (&client.PatchOptions{}).ApplyOptions(opts).DryRun != nil {
		return c.dryRun
	}
	return c.apply
}

func (c cluster) Delete(context.Context, client.Object, ...client.DeleteOption) error { return c.del }

func TestObjectError(t *testing.T) {
	web := &unstructured.Unstructured{}
	web.SetAPIVersion("apps/v1")
	web.SetKind("Deployment")
	web.SetNamespace("trucking")
	web.SetName("web")
	gk := schema.GroupKind{Group: "apps", Kind: "Deployment"}
	gr := schema.GroupResource{Group: "apps", Resource: "deployments"}
	forbidden := apierrors.NewForbidden(gr, "web", errors.New("no"))
	immutable := apierrors.NewInvalid(gk, "web", field.ErrorList{field.Invalid(field.NewPath("spec", "selector"), nil, "field is immutable")})
	refused := &url.Error{Op: "Patch", URL: "https://127.0.0.1:6443/x", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	timeout := fmt.Errorf("timeout waiting for: [Namespace/trucking status: 'InProgress']")
	tests := []struct {
		name    string
		cluster cluster
		force   bool  // recreate objects whose immutable fields changed
		err     error // instead of applying through the library
		cause   error
		want    string
		tr      bool
	}{{
		name:    "a dry run names its object",
		cluster: cluster{dryRun: forbidden},
		cause:   forbidden,
		want:    `Deployment/trucking/web: apply failed: deployments.apps "web" is forbidden: no`,
	}, {
		name:  "a dry-run error of the library names its object",
		err:   ssaerrors.NewDryRunErr(forbidden, web),
		cause: forbidden,
		want:  `Deployment/trucking/web: apply failed: deployments.apps "web" is forbidden: no`,
	}, {
		name:    "an apply names its object",
		cluster: cluster{apply: refused},
		cause:   refused,
		want:    `Deployment/trucking/web: apply failed: Patch "https://127.0.0.1:6443/x": dial tcp: connection refused`,
		tr:      true,
	}, {
		name:    "a request other than the apply says which it was",
		cluster: cluster{live: web, dryRun: immutable, del: forbidden},
		force:   true,
		cause:   forbidden,
		want:    `Deployment/trucking/web: apply failed: delete: deployments.apps "web" is forbidden: no`,
	}, {
		name:  "an error about no object names the unit",
		err:   timeout,
		cause: timeout,
		want:  `trucking/us-east-1/web: apply failed: timeout waiting for: [Namespace/trucking status: 'InProgress']`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			libErr := tt.err
			if libErr == nil {
				m := ssa.NewResourceManager(objectClient{Client: tt.cluster}, nil, ssa.Owner{Field: FieldManager})
				opts := ssa.DefaultApplyOptions()
				opts.Force = tt.force
				_, libErr = m.ApplyAllStaged(t.Context(), []*unstructured.Unstructured{web.DeepCopy()}, opts)
				if libErr == nil {
					t.Fatal("the library applied without error")
				}
			}
			err := objectError("trucking/us-east-1/web", "apply failed", libErr)
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
			if got := IsTransient(err); got != tt.tr {
				t.Errorf("IsTransient = %v, want %v", got, tt.tr)
			}
			if !errors.Is(err, tt.cause) {
				t.Errorf("%v does not wrap its cause", err)
			}
		})
	}
}

func TestResultString(t *testing.T) {
	ref := func(name string) plan.ObjectRef {
		return plan.ObjectRef{Version: "v1", Kind: "ConfigMap", Namespace: "t", Name: name}
	}
	tests := []struct {
		name string
		res  Result
		want string
	}{
		{"an empty unit", Result{Unit: fleet.UnitID{Tenant: "t", Region: "r", App: "a"}}, "t/r/a: no objects"},
		{"actions in a fixed order", Result{Unit: fleet.UnitID{Tenant: "t", Region: "r", App: "a"}, Objects: []ObjectResult{
			{ref("a"), Unchanged}, {ref("b"), Created}, {ref("c"), Configured}, {ref("d"), Created},
		}}, "t/r/a: 2 created, 1 configured, 1 unchanged"},
		{"leftovers to prune", Result{Unit: fleet.UnitID{Tenant: "t", Region: "r", App: "a"}, Objects: []ObjectResult{{ref("a"), Unchanged}}, Leftover: []plan.ObjectRef{ref("b")}},
			"t/r/a: 1 unchanged; 1 left over to prune"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.res.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}
