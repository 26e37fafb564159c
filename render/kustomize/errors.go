package kustomize

import (
	"errors"
	"fmt"
)

// ErrRefused matches, with errors.Is, every error that refuses an input for safety: a
// remote base or file, an exec, container or Go plugin, a KRM function, Helm chart
// inflation, or a path or symlink that leaves the snapshot. Such an input never builds,
// whatever is retried; the author has to change the repository.
var ErrRefused = errors.New("refused by the kustomize sandbox")

// Error is a failed build, located at the kustomization file it concerns.
type Error struct {
	// File is the kustomization file (or, when it has none, the directory) relative
	// to the snapshot root, slash-separated.
	File string
	// Message says what is wrong and what to do about it.
	Message string
	// Refused is true when the input was refused for safety; see ErrRefused.
	Refused bool
	// Err is the underlying error, if any; its text is already part of Message.
	Err error
}

// Error formats the problem as "file: message".
func (e *Error) Error() string { return e.File + ": " + e.Message }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrRefused) true for refusals.
func (e *Error) Is(target error) bool { return target == ErrRefused && e.Refused }

// refuse returns a refusal located at file.
func refuse(file, format string, args ...any) *Error {
	return &Error{File: file, Message: fmt.Sprintf(format, args...), Refused: true}
}

// failf returns a build failure located at file that wraps err.
func failf(file string, err error, format string, args ...any) *Error {
	return &Error{File: file, Message: fmt.Sprintf(format, args...), Err: err}
}
