package kustomize

import (
	"context"
	"errors"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Request says which kustomization to build and with which variables.
type Request struct {
	// Root is the absolute path of the repository snapshot, an immutable checkout.
	// Nothing outside it is ever read.
	Root string
	// Dir is the directory holding the kustomization file, relative to Root,
	// slash-separated; "" or "." is Root itself.
	Dir string
	// Vars, when not nil, are substituted into ${var} references of the built
	// objects after the build, as Flux's post-build substitution does:
	// ${var:=default} and the other shell forms give defaults, a reference to an
	// unset variable without one is an error. Values may be secrets; they never
	// appear in errors. Nil leaves the objects exactly as kustomize built them.
	Vars map[string]string
}

// Result is what a build produced.
type Result struct {
	// Objects are the built objects in kustomize's output order (depth-first in the
	// order the kustomizations list them), so identical inputs give identical output.
	Objects []*unstructured.Unstructured
	// Inputs are the files the build read, relative to Root, slash-separated,
	// sorted: regular files at their real paths, each readable inside Root.
	Inputs []string
	// Symlinks are the symlinks inside Root the build followed to reach its inputs
	// (a symlinked base, say), listed the same way; usually none.
	//
	// A digest of the Inputs' contents and the Symlinks' targets (os.Readlink), with
	// Dir and Vars, is a cache key for the build: nothing else in the snapshot
	// changes its result, short of adding a second kustomization file beside one
	// that was read.
	Symlinks []string
}

// Build builds the kustomization at req.Dir inside the snapshot at req.Root and
// substitutes req.Vars into the objects.
//
// It refuses (errors.Is(err, ErrRefused)) remote bases and files, exec, container
// and Go plugins, KRM functions, Helm chart inflation, absolute paths, and any path
// or symlink that leaves the snapshot. Bases and files elsewhere in the snapshot are
// allowed. Every error is an *Error naming the kustomization file.
//
// Kustomize cannot be interrupted: ctx is checked before the build and between its
// stages. Builds in one process run one at a time, because kustomize keeps global
// state.
func Build(ctx context.Context, req Request) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	fsys, err := newSnapshotFS(req.Root)
	if err != nil {
		return Result{}, err
	}
	defer fsys.Close()

	dir, err := kustomizationDir(fsys, req.Dir)
	if err != nil {
		return Result{}, err
	}
	pol := newPolicy(ctx, fsys)
	kpath, err := pol.kustomizationFile(dir)
	if err != nil {
		return Result{}, err
	}
	kfile := fsys.rel(kpath)
	if err := checkVars(kfile, req.Vars); err != nil {
		return Result{}, err
	}
	if err := pol.walk(dir, nil); err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}

	resMap, err := runKustomize(fsys, dir, pol.customSchema)
	if err != nil {
		return Result{}, buildError(fsys, kfile, req.Root, err)
	}

	objects := make([]*unstructured.Unstructured, 0, resMap.Size())
	for _, res := range resMap.Resources() {
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		js, err := res.MarshalJSON()
		if err != nil {
			return Result{}, failf(kfile, err, "%s: %v", res.CurId(), err)
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(js); err != nil {
			return Result{}, failf(kfile, err, "%s: %v", res.CurId(), err)
		}
		if req.Vars != nil {
			if obj, err = substitute(kfile, obj, req.Vars); err != nil {
				return Result{}, err
			}
		}
		objects = append(objects, obj)
	}
	return Result{Objects: objects, Inputs: fsys.Inputs(), Symlinks: fsys.Symlinks()}, nil
}

// kustomizationDir checks the requested directory and returns where it really is.
func kustomizationDir(fsys *snapshotFS, dir string) (string, error) {
	if dir == "" {
		dir = "."
	}
	native := filepath.FromSlash(dir)
	if filepath.IsAbs(native) || !filepath.IsLocal(native) {
		return "", refuse(dir, "the kustomization directory must be a relative path inside the repository; fix spec.kustomize.path")
	}
	real, exists, err := fsys.resolve(native)
	var escape *escapeError
	switch {
	case errors.As(err, &escape):
		return "", refuse(dir, "the kustomization directory leaves the snapshot root through the symlink %s (-> %s); replace the symlink with the files it points to",
			escape.link, escape.target)
	case err != nil:
		return "", failf(dir, err, "%v", err)
	case !exists || !fsys.IsDir(real):
		return "", &Error{File: dir, Message: "no such directory in the repository; fix spec.kustomize.path"}
	}
	return real, nil
}

// buildError locates a kustomize error at the top kustomization file and makes the
// paths in its text relative to the root.
func buildError(fsys *snapshotFS, kfile, root string, err error) error {
	var escape *escapeError
	if errors.As(err, &escape) {
		e := refuse(kfile, "%v; keep every path inside the repository", escape)
		e.Err = err
		return e
	}
	msg := err.Error()
	for _, prefix := range []string{fsys.root, filepath.Clean(root)} {
		msg = strings.ReplaceAll(msg, prefix+string(filepath.Separator), "")
		msg = strings.ReplaceAll(msg, prefix, ".")
	}
	return failf(kfile, err, "kustomize build failed: %s; fix the kustomization (kustomize build %s in the repository shows the same)",
		msg, filepath.ToSlash(filepath.Dir(kfile)))
}
