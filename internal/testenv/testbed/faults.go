package testbed

import (
	"context"
	"fmt"
	"slices"
)

// KillAPIServer kills region name's kube-apiserver with SIGKILL, as a crash would,
// and waits until it has exited. etcd and the region's other components keep
// running; StartAPIServer brings the apiserver back on the same address with the
// same data and credentials.
func (tb *Testbed) KillAPIServer(name string) error {
	r := tb.Region(name)
	if r == nil {
		return fmt.Errorf("testbed: no region %q", name)
	}
	p := r.process(KubeAPIServer)
	if p == nil || p.exited() {
		return fmt.Errorf("testbed: region %s: kube-apiserver is not running", name)
	}
	p.killed.Store(true) // not a crash for Stop to report
	if err := killGroup(p.pid()); err != nil {
		return fmt.Errorf("testbed: region %s: kill kube-apiserver: %w", name, err)
	}
	<-p.done
	return nil
}

// StartAPIServer starts region name's kube-apiserver again after KillAPIServer,
// with the arguments it first ran with, and waits until it is ready. A region
// with workloads has its kwok restarted too, as kubelets would carry on.
func (tb *Testbed) StartAPIServer(ctx context.Context, name string) error {
	r := tb.Region(name)
	if r == nil {
		return fmt.Errorf("testbed: no region %q", name)
	}
	old := r.process(KubeAPIServer)
	if old == nil || !old.exited() {
		return fmt.Errorf("testbed: region %s: kube-apiserver is running; kill it first", name)
	}
	p, err := tb.startProcess(r, KubeAPIServer, old.cmd.Args[1:]...)
	if err != nil {
		return err
	}
	r.procs = slices.DeleteFunc(r.procs, func(q *process) bool { return q == old })
	client, err := tlsClient(r.Config.CAData)
	if err != nil {
		return fmt.Errorf("testbed: region %s: %w", name, err)
	}
	err = waitFor(ctx, p, apiserverTimeout, "/readyz", func() error {
		return httpOK(ctx, client, r.Server+"/readyz", r.Config.BearerToken)
	})
	if err != nil {
		return err
	}
	// kwok stops heartbeating a node whose heartbeat failed while the apiserver
	// was down, where a kubelet would retry; the node lifecycle controller then
	// finds the nodes gone and marks every pod not Ready for good. A new kwok
	// heartbeats every node again.
	if kwok := r.process(Kwok); kwok != nil {
		kwok.killed.Store(true)
		if err := killGroup(kwok.pid()); err != nil {
			return fmt.Errorf("testbed: region %s: kill kwok: %w", name, err)
		}
		<-kwok.done
		if _, err := tb.startProcess(r, Kwok, kwok.cmd.Args[1:]...); err != nil {
			return err
		}
		r.procs = slices.DeleteFunc(r.procs, func(q *process) bool { return q == kwok })
	}
	return tb.writeState()
}
