// Package testbed runs local Kubernetes "regions" made of the real components:
// for each region its own etcd and kube-apiserver, and, when workloads matter,
// kube-controller-manager, kube-scheduler and kwok (fake kubelets) with a few
// fake Nodes, so that a Deployment becomes Available through the real
// controllers rather than through patched status.
//
// No container engine or release download is needed. The components are built
// from Go modules pinned in the nested tools module internal/testenv/testbed/components
// (its own go.mod, so the product's module never carries k8s.io/kubernetes) and
// cached outside the source tree, keyed by that module's go.mod and go.sum, the
// Go version and the platform. The first build takes about twelve minutes on
// two cores; afterwards a region is ready in a few seconds.
//
// Tests call New, which starts the regions and stops them when the test ends:
//
//	tb := testbed.New(t, testbed.Options{Regions: 3, Workloads: true})
//	cs := kubernetes.NewForConfigOrDie(tb.Regions[0].Config)
//
// People use `meridian-dev up` and `meridian-dev down`, which call Start with
// Options.Detached and Down. Every component runs on 127.0.0.1 only, on ports
// chosen free at start, and logs to a file in the region's state directory.
package testbed
