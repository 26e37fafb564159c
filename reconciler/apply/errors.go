package apply

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"

	ssaerrors "github.com/fluxcd/pkg/ssa/errors"
	"github.com/fluxcd/pkg/ssa/utils"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilnet "k8s.io/apimachinery/pkg/util/net"
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
// concerns: the library's messages start with the object ("Kind/ns/name apply
// failed: cause"), its dry-run errors carry it.
func objectError(unit, op string, err error, objects []*unstructured.Unstructured) error {
	var dryRun *ssaerrors.DryRunErr
	if errors.As(err, &dryRun) && dryRun.InvolvedObject() != nil {
		cause := dryRun.Unwrap()
		return &Error{Object: utils.FmtUnstructured(dryRun.InvolvedObject()), Op: op, Err: cause, Transient: transient(cause)}
	}
	msg := err.Error()
	for _, o := range objects {
		subject := utils.FmtUnstructured(o)
		rest, ok := strings.CutPrefix(msg, subject+" ")
		if !ok {
			continue
		}
		cause := errors.Unwrap(err)
		if cause == nil {
			break
		}
		libOp, ok := strings.CutSuffix(rest, ": "+cause.Error())
		if !ok {
			libOp = op
		}
		return &Error{Object: subject, Op: libOp, Err: cause, Transient: transient(cause)}
	}
	return &Error{Object: unit, Op: op, Err: err, Transient: transient(err)}
}
