// Package helm renders an App's Helm chart into Kubernetes objects through the Helm SDK,
// without a helm binary and without a cluster.
//
// A chart is either a directory in the fleet repository (relative to the App's app.yaml,
// its dependencies vendored under the chart's charts/) or a chart pinned by name and
// version in an HTTP(S) chart repository or an oci:// registry. Rendering does what
// `helm template --include-crds` does: the chart's dependencies are resolved (conditions,
// tags, import-values), values are coalesced with the chart's values.yaml and checked
// against values.schema.json, Chart.yaml's kubeVersion is checked against the requested
// Kubernetes version, and the templates are executed client-only with
// .Release.IsInstall true, .Release.Revision 1, .Capabilities.KubeVersion set from the
// request and .Capabilities.APIVersions holding the built-in API versions plus the
// request's extra ones. The lookup function finds nothing and DNS lookups are off, so
// the same inputs always render the same objects.
//
// What comes out, and what does not:
//   - Every object of the rendered templates and of the charts' crds/ directories, parsed
//     into unstructured objects and sorted by API group, kind, namespace and name, so that
//     the same inputs give byte-identical output. Empty documents are skipped; a document
//     that is not valid YAML or not a Kubernetes object is an error naming its template.
//   - Hooks (objects annotated helm.sh/hook) that run at install or upgrade are returned
//     with the rest, annotations and all; Hooks separates them and reads their events,
//     weights and delete policies as Helm does, for whoever applies them at those events.
//   - Hooks that run at none of pre-install, post-install, pre-upgrade and post-upgrade
//     are dropped: tests (helm.sh/hook: test, or the Helm 2 spelling test-success),
//     which `helm test` runs, and delete and rollback hooks, which have no event in
//     Meridian. A hook that names one of them together with an install or upgrade
//     event is kept. A hook naming an event Helm does not know is dropped, as Helm drops
//     it.
//   - NOTES.txt is ignored. Objects are returned as rendered: a namespaced object the chart
//     left without metadata.namespace is not defaulted here, because only the cluster's
//     discovery knows which kinds are namespaced.
//   - The same object (API group, kind, namespace, name) rendered twice is an error naming
//     both templates, where Helm would fail at install time.
//
// Local charts are read only from inside the repository snapshot: the chart path, and
// every symlink met while reading the chart, must resolve inside the snapshot root, and
// files are read through an os.Root so that nothing outside is touched. Helm builds the
// chart from the files read here (loader.LoadFiles), honouring .helmignore.
//
// Remote charts are downloaded once into a cache directory, keyed by repository URL, chart
// name and version; their content is verified (the archive digest from index.yaml for
// HTTP repositories, the OCI layer digest for registries) before it is kept, and again
// each time the cache is read. A cached chart is used without any network request, and
// concurrent renders of the same chart download it once.
//
// Errors name the App file or the chart file they concern, with the template's line and
// column where Helm reports one, and say what to do. They never quote rendered output,
// which may hold decrypted values.
package helm
