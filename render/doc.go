// Package render turns a snapshot of the fleet repository into the exact objects each
// region gets: for every placement (tenant × region × app) the app's Helm chart or
// Kustomize base rendered with its merged values and decrypted secrets, confined to
// the tenant's namespace and labelled with where it came from; and for every tenant
// in every region the objects that isolate its namespace.
//
// Rendering is deterministic (the same inputs give byte-identical objects) and cached
// by a digest of every input — chart files or the files a kustomization read, values,
// secret ciphertext, Kubernetes version and Meridian's version — so a placement whose
// inputs did not change is never rendered twice, and its secrets are not even
// decrypted. Rendered objects may hold decrypted secrets: they are kept in memory only.
//
// The subpackages do the work: fleet holds the model, secrets decrypts SOPS files,
// helm and kustomize render apps.
package render
