package apply

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"

	ssaerrors "github.com/fluxcd/pkg/ssa/errors"
	"github.com/fluxcd/pkg/ssa/utils"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Error is a failed operation on one object, or on a whole unit. Its message starts
// with what it concerns: "Deployment/trucking/web: apply failed: ...".
type Error struct {
	// Object is Kind/namespace/name (Kind/name when cluster-scoped), or the unit's ID
	// when the failure concerns no single object.
	Object string
	// Op says what failed: "apply failed", "delete failed", ...
	Op string
	// Err is the cause.
	Err error
	// Transient reports a failure that retrying can fix by itself: the region was
	// unreachable or overloaded, a request timed out, a write conflicted with
	// another. Anything else — an invalid object, a refusal by RBAC or admission, a
	// missing kind — needs someone to change the fleet or the cluster.
	Transient bool
}

// Error names the object and the operation first: Deployment/trucking/web: apply: ....
func (e *Error) Error() string { return e.Object + ": " + e.Op + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// IsTransient reports whether err is worth retrying as it is: true when it is (or
// joins only) transient failures. Callers retry those with backoff and report the
// others.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs := j.Unwrap()
		for _, e := range errs {
			if !IsTransient(e) {
				return false
			}
		}
		return len(errs) > 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Transient
	}
	return transient(err)
}

// HealthUnknown reports whether an error of Wait means the unit's health could not
// be read — the region's API server was unreachable, overloaded or too slow — rather
// than that its objects were read and found failed or not ready. The root cause
// decides, whatever the layers of *Error around it.
func HealthUnknown(err error) bool {
	if err == nil {
		return false
	}
	var e *Error
	for errors.As(err, &e) && e.Err != nil {
		err = e.Err
	}
	return transient(err)
}

// transient classifies a cause. Unknown failures are permanent: they are reported
// rather than retried quietly.
func transient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		switch {
		case apierrors.IsConflict(err), apierrors.IsServerTimeout(err), apierrors.IsTimeout(err),
			apierrors.IsTooManyRequests(err), apierrors.IsServiceUnavailable(err),
			apierrors.IsInternalError(err), apierrors.IsUnexpectedServerError(err):
			return true
		}
		return status.Status().Code >= 500
	}
	if utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err) ||
		errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return true
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) && urlErr.Timeout() {
		return true
	}
	return false
}

// objectError turns an error of the ssa library into an *Error naming the object it
// concerns. The library names the object only in its messages' text; Meridian knows
// it otherwise: the client it gives the library (objectClient) marks each failed
// request with the object the request was about, and the library's dry-run errors
// carry their object. An error of no single object, such as a stage that did not
// become ready in time, concerns the unit.
func objectError(unit, op string, err error) error {
	var req *requestError
	if errors.As(err, &req) {
		if req.verb != verbApply {
			op += ": " + req.verb
		}
		return &Error{Object: req.object, Op: op, Err: req.err, Transient: transient(req.err)}
	}
	var dryRun *ssaerrors.DryRunErr
	if errors.As(err, &dryRun) && dryRun.InvolvedObject() != nil {
		cause := dryRun.Unwrap()
		return &Error{Object: utils.FmtUnstructured(dryRun.InvolvedObject()), Op: op, Err: cause, Transient: transient(cause)}
	}
	return &Error{Object: unit, Op: op, Err: err, Transient: transient(err)}
}

// The requests objectClient tells apart. A server-side apply, dry run or not, is
// what applying an object means; a delete (to recreate an object whose immutable
// fields changed, were Force set) or another patch (of its managed fields) is named
// in the error.
const (
	verbApply  = "apply"
	verbPatch  = "patch"
	verbDelete = "delete"
)

// requestError is a request about one object that failed, as objectClient saw it.
// Its message is the cause's: the library puts the object's name in front of it.
type requestError struct {
	// object is Kind/namespace/name (Kind/name when cluster-scoped), as the library
	// writes it.
	object string
	verb   string
	err    error
}

func (e *requestError) Error() string { return e.err.Error() }
func (e *requestError) Unwrap() error { return e.err }

// objectClient is the client given to the ssa library: a failed write of an object
// comes back as a *requestError naming that object, so that objectError knows which
// object a failure concerned however the library words it. Reads pass through
// unmarked: the library returns a read's error only while waiting for an object it
// deleted to recreate it, which Meridian never asks for (ApplyOptions.Force).
//
// It also tells wrote, when set, of every object a write (not a dry run) returned,
// so that health waits for the watches to see that version (Applier.written).
type objectClient struct {
	client.Client
	// wrote is told of every write that is not a dry run, with the object as
	// written and, for a server-side apply, the desiredDigest of what it applied
	// ("" for other writes).
	wrote func(obj client.Object, desired string)
}

func (c objectClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	verb := verbPatch
	if patch.Type() == types.ApplyPatchType {
		verb = verbApply
	}
	write := c.wrote != nil && len((&client.PatchOptions{}).ApplyOptions(opts).DryRun) == 0
	var desired string
	if u, ok := obj.(*unstructured.Unstructured); ok && write && verb == verbApply {
		desired = desiredDigest(u) // before the response replaces it
	}
	err := c.Client.Patch(ctx, obj, patch, opts...)
	if err == nil && write {
		c.wrote(obj, desired)
	}
	return failed(obj, verb, err)
}

func (c objectClient) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	return failed(obj, verbDelete, c.Client.Delete(ctx, obj, opts...))
}

// failed marks err, if any, with the object it concerns. The library writes only
// unstructured objects; others are not marked.
func failed(obj client.Object, verb string, err error) error {
	u, ok := obj.(*unstructured.Unstructured)
	if err == nil || !ok {
		return err
	}
	return &requestError{object: utils.FmtUnstructured(u), verb: verb, err: err}
}
