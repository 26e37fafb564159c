package shard

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	coordinationclient "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/clock"
)

// Defaults of Options.
const (
	DefaultName          = "meridian"
	DefaultShards        = 32
	DefaultLeaseDuration = 15 * time.Second
)

// Labels and annotations on the Leases a Manager keeps.
const (
	// LabelRole is "member" on a replica's Lease and "shard" on a shard's.
	LabelRole = "meridian.dev/lease"
	// LabelName is Options.Name, so that two daemons in one namespace stay apart.
	LabelName = "meridian.dev/name"
	// AnnotationShards on a member Lease is the number of shards its replica
	// hashes tenants into; replicas acquire nothing while live members disagree.
	AnnotationShards = "meridian.dev/shards"
)

// Options configure a Manager.
type Options struct {
	// Client reaches the management cluster, where the Leases are kept. Its rate
	// limit must allow an update of every held shard each renew period (client-go's
	// default of 5 a second does not). Required.
	Client kubernetes.Interface
	// Namespace holds the Leases. Required.
	Namespace string
	// Identity names this replica among the others (the pod's name); it must be
	// unique among live replicas and a DNS subdomain. Required.
	Identity string
	// Name prefixes every Lease: <name>-leader, <name>-member-<identity>,
	// <name>-shard-<n>. Default DefaultName.
	Name string
	// Shards is how many shards tenants hash into. Every replica must use the same
	// number; default DefaultShards.
	Shards int
	// LeaseDuration is how long a Lease that stopped changing still counts as
	// held: a killed replica's shards move after about this long. Default
	// DefaultLeaseDuration.
	LeaseDuration time.Duration
	// RenewPeriod is how often Leases are renewed and membership read. Default a
	// fifth of LeaseDuration.
	RenewPeriod time.Duration
	// Log receives ownership changes. Nil discards them.
	Log *slog.Logger
	// DNS adds the Route53 writer's Lease <name>-dns, held like a shard by the
	// one replica hashing gives it: a Hold then reports DNSWriter owned, and only
	// that replica writes Route53. Every replica must set it alike.
	DNS bool
	// Clock is what the Manager reads the time from and waits on: the renew
	// period, the expiry of other replicas' Leases and the fencing of Holds all
	// count on it. Nil is the real clock; tests give a fake one. Request timeouts,
	// and leader election (client-go's LeaderElector takes no clock), keep the
	// real clock.
	Clock clock.WithTicker
}

// Manager keeps this replica's Leases: its member Lease, the shard Leases it owns
// by rendezvous hashing over the live members, and a candidacy for leader. It
// implements reconciler.Ownership: Hold pins the shards a pass may change.
type Manager struct {
	opts   Options
	leases coordinationclient.LeaseInterface
	log    *slog.Logger
	clock  clock.WithTicker
	// holder names this process on the shard and leader Leases: the identity and a
	// random suffix, so that a restart, or a second process given the same
	// identity by mistake, never counts as the holder of the first one's Leases.
	holder string

	mu sync.Mutex
	// held are the shards whose Lease this replica holds, with the time until
	// which it may write to their tenants.
	held map[int]time.Time
	// wanted are the held shards hashing gives this replica; Hold pins only those.
	wanted map[int]bool
	// pins count the Holds in progress on each shard; a pinned shard is renewed
	// and never released.
	pins map[int]int
	// holds are the Holds in progress, whose fenced contexts end when a pinned
	// shard can no longer be proven held.
	holds map[*hold]bool
	// members is the last view of the live replicas.
	members []string
	// seen records, for each Lease by name, the resourceVersion last read and when
	// this replica first read it: a Lease expires when it has not changed for a
	// lease duration of this replica's own clock, whatever the other clocks say.
	seen map[string]observation

	changed chan struct{}
	leader  atomic.Bool
	// abandon makes Run return without releasing anything, as a killed process
	// would; only tests set it.
	abandon atomic.Bool
}

type observation struct {
	version string
	at      time.Time
}

// New checks opts and returns a Manager; Run starts it.
func New(opts Options) (*Manager, error) {
	if opts.Client == nil {
		return nil, errors.New("shard: no client for the management cluster")
	}
	if opts.Namespace == "" {
		return nil, errors.New("shard: no namespace for the Leases")
	}
	if opts.Name == "" {
		opts.Name = DefaultName
	}
	if opts.Shards <= 0 {
		opts.Shards = DefaultShards
	}
	if opts.LeaseDuration <= 0 {
		opts.LeaseDuration = DefaultLeaseDuration
	}
	if opts.RenewPeriod <= 0 {
		opts.RenewPeriod = opts.LeaseDuration / 5
	}
	if opts.RenewPeriod*3 > opts.LeaseDuration {
		return nil, fmt.Errorf("shard: renew period %s is too long for lease duration %s; it must be at most a third", opts.RenewPeriod, opts.LeaseDuration)
	}
	if errs := validation.IsDNS1123Subdomain(memberLease(opts.Name, opts.Identity)); opts.Identity == "" || len(errs) > 0 {
		return nil, fmt.Errorf("shard: identity %q cannot name a Lease (%v); use the pod's name", opts.Identity, errs)
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	var nonce [4]byte
	_, _ = rand.Read(nonce[:])
	return &Manager{
		opts:    opts,
		holder:  opts.Identity + "_" + hex.EncodeToString(nonce[:]),
		leases:  opts.Client.CoordinationV1().Leases(opts.Namespace),
		log:     opts.Log.With("component", "shard", "identity", opts.Identity),
		clock:   opts.Clock,
		held:    map[int]time.Time{},
		wanted:  map[int]bool{},
		pins:    map[int]int{},
		holds:   map[*hold]bool{},
		seen:    map[string]observation{},
		changed: make(chan struct{}, 1),
	}, nil
}

func memberLease(name, identity string) string { return name + "-member-" + identity }
func shardLease(name string, s int) string {
	if s == dnsShard {
		return name + "-dns"
	}
	return fmt.Sprintf("%s-shard-%d", name, s)
}

// DNSWriter is the name a Hold's owns answers true for when this replica holds
// the Route53 writer's Lease for the pass (Options.DNS). No tenant can have it:
// tenant names are DNS labels.
const DNSWriter = "@route53"

// dnsShard is the Route53 writer's Lease among the shards: held, renewed,
// fenced and handed over exactly like a tenant shard, and owned by rendezvous
// hashing like one, whatever the shard count.
const dnsShard = -1

// shards lists the shards this Manager keeps: the tenant shards, and the
// Route53 writer's with Options.DNS.
func (m *Manager) shards() []int {
	out := make([]int, 0, m.opts.Shards+1)
	if m.opts.DNS {
		out = append(out, dnsShard)
	}
	for s := range m.opts.Shards {
		out = append(out, s)
	}
	return out
}

// Changed receives a value when the shards this replica owns changed, so that
// the daemon runs a pass for its current revision at once.
func (m *Manager) Changed() <-chan struct{} { return m.changed }

// Leader reports whether this replica is the elected leader.
func (m *Manager) Leader() bool { return m.leader.Load() }

// Owned returns the tenant shards this replica holds, within their validity, and
// owns by hashing, sorted; the Route53 writer's Lease is not among them (a
// Hold's owns(DNSWriter) says whether this replica holds it).
func (m *Manager) Owned() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.DeleteFunc(m.owned(m.clock.Now()), func(s int) bool { return s == dnsShard })
}

// ownedNow is owned, the Route53 writer's Lease included, at the clock's time.
func (m *Manager) ownedNow() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.owned(m.clock.Now())
}

func (m *Manager) owned(now time.Time) []int {
	var out []int
	for s, until := range m.held {
		if m.wanted[s] && now.Before(until) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// Members returns the last view of the live replicas, sorted.
func (m *Manager) Members() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.members)
}

// Run keeps the Leases until ctx is done, then waits for the Holds in progress
// to be released, gives up every shard and removes its member Lease, so that the
// others take over at once.
func (m *Manager) Run(ctx context.Context) error {
	electCtx, stopElection := context.WithCancel(ctx)
	defer stopElection()
	elector, err := m.elector()
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		// Run returns when leadership is lost: stand again, until stopped.
		for electCtx.Err() == nil {
			elector.Run(electCtx)
		}
	})

	tick := m.clock.NewTicker(m.opts.RenewPeriod)
	defer tick.Stop()
	m.step(ctx, false)
	for {
		select {
		case <-tick.C():
			m.step(ctx, false)
			continue
		case <-ctx.Done():
		}
		break
	}
	if m.abandon.Load() {
		return nil
	}
	// Keep renewing what passes still hold, then let everything go.
	bg := context.WithoutCancel(ctx)
	for m.pinned() {
		m.step(bg, true)
		<-tick.C()
	}
	m.step(bg, true)
	rctx, cancel := context.WithTimeout(bg, m.opts.RenewPeriod)
	defer cancel()
	if err := m.leases.Delete(rctx, memberLease(m.opts.Name, m.opts.Identity), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		m.log.Warn("member Lease not removed; it expires on its own", "error", err)
	}
	if m.opts.DNS {
		m.deleteHealth(rctx, m.opts.Identity)
	}
	m.log.Info("left the replicas")
	return nil
}

func (m *Manager) pinned() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range m.pins {
		if n > 0 {
			return true
		}
	}
	return false
}

// step renews this replica's member Lease, reads the live members and brings the
// shard Leases in line: renew what is held, acquire what hashing gives and is
// free, release what hashing gave away and no pass holds. stopping releases every
// shard no pass holds and acquires nothing.
func (m *Manager) step(ctx context.Context, stopping bool) {
	// A step may outlast a renew period (the ticker then skips a tick): each
	// renewal's validity counts from when that renewal was sent.
	ctx, cancel := context.WithTimeout(ctx, m.opts.LeaseDuration/3)
	defer cancel()
	now := m.clock.Now()
	agree := true
	if !stopping {
		if err := m.renewMember(ctx, now); err != nil {
			m.log.Warn("member Lease not renewed", "error", err)
		}
		var err error
		if agree, err = m.readMembers(ctx, now); err != nil {
			m.log.Warn("members not read; keeping the last view", "error", err)
		}
	}
	list, err := m.leases.List(ctx, metav1.ListOptions{LabelSelector: LabelRole + "=shard," + LabelName + "=" + m.opts.Name})
	if err != nil {
		m.log.Warn("shard Leases not read; renewing what is held", "error", err)
	}
	byName := map[string]*coordinationv1.Lease{}
	if list != nil {
		for i := range list.Items {
			l := &list.Items[i]
			byName[l.Name] = l
			m.observe(l.Name, l.ResourceVersion, now)
		}
	}

	m.mu.Lock()
	members := slices.Clone(m.members)
	m.mu.Unlock()
	before := m.ownedNow()
	for _, s := range m.shards() {
		want := !stopping && Owner(s, members) == m.opts.Identity
		m.mu.Lock()
		_, held := m.held[s]
		pinned := m.pins[s] > 0
		m.wanted[s] = want && held
		m.mu.Unlock()
		name := shardLease(m.opts.Name, s)
		switch {
		case held && (want || pinned):
			m.renewShard(ctx, s, byName[name])
		case held:
			m.releaseShard(ctx, s, byName[name])
		case want && agree && list != nil:
			m.acquireShard(ctx, s, name, byName[name])
		}
	}
	m.mu.Lock()
	for s := range m.held {
		m.wanted[s] = !stopping && Owner(s, members) == m.opts.Identity
	}
	m.mu.Unlock()
	if after := m.ownedNow(); !slices.Equal(before, after) {
		m.log.Info("shards changed", "owned", after, "members", members)
		select {
		case m.changed <- struct{}{}:
		default:
		}
	}
}

// observe records a Lease's resourceVersion, and the time it was first seen.
func (m *Manager) observe(name, version string, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if o, ok := m.seen[name]; !ok || o.version != version {
		m.seen[name] = observation{version: version, at: now}
	}
}

// expired reports whether a Lease has not changed for a lease duration (the
// longer of this replica's and the Lease's own) by this replica's clock.
func (m *Manager) expired(l *coordinationv1.Lease, now time.Time) bool {
	d := m.opts.LeaseDuration
	if l.Spec.LeaseDurationSeconds != nil {
		d = max(d, time.Duration(*l.Spec.LeaseDurationSeconds)*time.Second)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.seen[l.Name]
	return ok && o.version == l.ResourceVersion && now.Sub(o.at) >= d
}

func (m *Manager) leaseSpec(now time.Time, holder string) coordinationv1.LeaseSpec {
	seconds := int32((m.opts.LeaseDuration + time.Second - 1) / time.Second)
	t := metav1.NewMicroTime(now)
	return coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &seconds, RenewTime: &t}
}

// renewMember creates or renews this replica's member Lease.
func (m *Manager) renewMember(ctx context.Context, now time.Time) error {
	name := memberLease(m.opts.Name, m.opts.Identity)
	l, err := m.leases.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: m.opts.Namespace,
			Labels:      map[string]string{LabelRole: "member", LabelName: m.opts.Name},
			Annotations: map[string]string{AnnotationShards: strconv.Itoa(m.opts.Shards)}}, Spec: m.leaseSpec(now, m.opts.Identity)}
		_, err = m.leases.Create(ctx, l, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	l.Spec = m.leaseSpec(now, m.opts.Identity)
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	l.Annotations[AnnotationShards] = strconv.Itoa(m.opts.Shards)
	_, err = m.leases.Update(ctx, l, metav1.UpdateOptions{})
	return err
}

// readMembers reads the member Leases and keeps the live ones as the view. It
// reports whether every live member hashes into as many shards as this one.
func (m *Manager) readMembers(ctx context.Context, now time.Time) (agree bool, err error) {
	list, err := m.leases.List(ctx, metav1.ListOptions{LabelSelector: LabelRole + "=member," + LabelName + "=" + m.opts.Name})
	if err != nil {
		return false, err
	}
	live := []string{m.opts.Identity}
	agree = true
	for i := range list.Items {
		l := &list.Items[i]
		m.observe(l.Name, l.ResourceVersion, now)
		holder := ""
		if l.Spec.HolderIdentity != nil {
			holder = *l.Spec.HolderIdentity
		}
		if holder == "" || holder == m.opts.Identity || m.expired(l, now) {
			continue
		}
		if l.Annotations[AnnotationShards] != strconv.Itoa(m.opts.Shards) {
			// Its shards cover other tenants than ours: share nothing with it, and
			// take no new shard while it lives.
			agree = false
			m.log.Warn("a live replica hashes into another number of shards; acquiring nothing until it leaves", "replica", holder, "shards", l.Annotations[AnnotationShards])
			continue
		}
		live = append(live, holder)
	}
	slices.Sort(live)
	m.mu.Lock()
	if !slices.Equal(live, m.members) {
		m.log.Info("members changed", "members", live)
	}
	m.members = live
	m.mu.Unlock()
	return agree, nil
}

// acquireShard takes a shard's Lease when it is missing, released, expired or
// already this process's. The update carries
// the resourceVersion read, so of two replicas that try at once one fails.
func (m *Manager) acquireShard(ctx context.Context, s int, name string, l *coordinationv1.Lease) {
	start := m.clock.Now()
	var err error
	if l == nil {
		l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: m.opts.Namespace,
			Labels: map[string]string{LabelRole: "shard", LabelName: m.opts.Name}}, Spec: m.leaseSpec(start, m.holder)}
		l, err = m.leases.Create(ctx, l, metav1.CreateOptions{})
	} else {
		holder := ""
		if l.Spec.HolderIdentity != nil {
			holder = *l.Spec.HolderIdentity
		}
		if holder != "" && holder != m.holder && !m.expired(l, start) {
			return
		}
		l = l.DeepCopy()
		l.Spec = m.leaseSpec(start, m.holder)
		if l.Spec.LeaseTransitions == nil || holder != m.holder {
			n := int32(0)
			if l.Spec.LeaseTransitions != nil {
				n = *l.Spec.LeaseTransitions + 1
			}
			l.Spec.LeaseTransitions = &n
		}
		l, err = m.leases.Update(ctx, l, metav1.UpdateOptions{})
	}
	if err != nil {
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
			m.log.Warn("shard Lease not acquired", "shard", s, "error", err)
		}
		return
	}
	m.observe(l.Name, l.ResourceVersion, start)
	m.mu.Lock()
	m.held[s] = m.validUntil(start)
	m.mu.Unlock()
	m.log.Info("shard acquired", "shard", s)
}

// validUntil is how long writes may go on after a renewal sent at start: another
// replica takes the Lease over no sooner than a lease duration after it read the
// renewed Lease, which is after start. A third of the duration is kept as margin
// for requests in flight and clocks that run at different rates.
func (m *Manager) validUntil(start time.Time) time.Time {
	return start.Add(m.opts.LeaseDuration * 2 / 3)
}

// renewShard renews a held shard's Lease. A Lease gone or held by another
// replica is lost at once; a failed request leaves it held until its validity
// ends.
func (m *Manager) renewShard(ctx context.Context, s int, l *coordinationv1.Lease) {
	start := m.clock.Now()
	var err error
	if l == nil {
		l, err = m.leases.Get(ctx, shardLease(m.opts.Name, s), metav1.GetOptions{})
	}
	if err == nil && (l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != m.holder) {
		err = errLost
	}
	if err == nil {
		l = l.DeepCopy()
		transitions := l.Spec.LeaseTransitions
		l.Spec = m.leaseSpec(start, m.holder)
		l.Spec.LeaseTransitions = transitions
		l, err = m.leases.Update(ctx, l, metav1.UpdateOptions{})
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case err == nil:
		m.held[s] = m.validUntil(start)
		m.seen[l.Name] = observation{version: l.ResourceVersion, at: start}
		return
	case errors.Is(err, errLost) || apierrors.IsNotFound(err) || apierrors.IsConflict(err):
		m.log.Error("shard Lease lost", "shard", s, "error", err)
		delete(m.held, s)
		delete(m.wanted, s)
		for h := range m.holds {
			if h.shards[s] {
				h.cancel(fmt.Errorf("shard %d: %w", s, errLost))
			}
		}
	default:
		m.log.Warn("shard Lease not renewed", "shard", s, "error", err, "validUntil", m.held[s])
	}
}

var errLost = errors.New("the shard's Lease is held by another replica")

// releaseShard gives a shard's Lease up, so that its new owner takes it at once.
func (m *Manager) releaseShard(ctx context.Context, s int, l *coordinationv1.Lease) {
	m.mu.Lock()
	delete(m.held, s)
	delete(m.wanted, s)
	m.mu.Unlock()
	if l == nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != m.holder {
		return
	}
	l = l.DeepCopy()
	empty := ""
	l.Spec.HolderIdentity = &empty
	l.Spec.RenewTime = nil
	if _, err := m.leases.Update(ctx, l, metav1.UpdateOptions{}); err != nil {
		m.log.Warn("shard Lease not released; it expires on its own", "shard", s, "error", err)
		return
	}
	m.log.Info("shard released", "shard", s)
}

// elector is this replica's candidacy for leader. The leader removes the member
// Leases of replicas gone for a lease duration or more.
func (m *Manager) elector() (*leaderelection.LeaderElector, error) {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: m.opts.Name + "-leader", Namespace: m.opts.Namespace},
		Client:     m.opts.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: m.holder},
	}
	return leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   m.opts.LeaseDuration,
		RenewDeadline:   m.opts.LeaseDuration * 2 / 3,
		RetryPeriod:     m.opts.RenewPeriod,
		ReleaseOnCancel: true,
		Name:            m.opts.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				// This runs in its own goroutine, possibly after leadership was
				// already lost and OnStoppedLeading ran: ctx is cancelled by then.
				m.leader.Store(true)
				if ctx.Err() != nil {
					m.leader.Store(false)
					return
				}
				m.log.Info("elected leader")
				m.lead(ctx)
			},
			OnStoppedLeading: func() {
				m.leader.Store(false)
				m.log.Info("no longer leader")
			},
		},
	})
}

// lead is the leader's work, until ctx is done: removing the member Leases of
// replicas that stopped renewing them, so that the Lease list stays short.
func (m *Manager) lead(ctx context.Context) {
	tick := m.clock.NewTicker(m.opts.LeaseDuration)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C():
		}
		lctx, cancel := context.WithTimeout(ctx, m.opts.RenewPeriod)
		list, err := m.leases.List(lctx, metav1.ListOptions{LabelSelector: LabelRole + "=member," + LabelName + "=" + m.opts.Name})
		now := m.clock.Now()
		for i := 0; err == nil && i < len(list.Items); i++ {
			l := &list.Items[i]
			m.observe(l.Name, l.ResourceVersion, now)
			// Gone for two lease durations: well past the point where every
			// replica stopped counting it.
			if m.expired(l, now.Add(-m.opts.LeaseDuration)) {
				rv := l.ResourceVersion
				if err := m.leases.Delete(lctx, l.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}}); err == nil {
					m.log.Info("removed the Lease of a replica that went away", "lease", l.Name)
					if identity, ok := strings.CutPrefix(l.Name, memberLease(m.opts.Name, "")); ok && m.opts.DNS {
						m.deleteHealth(lctx, identity)
					}
				}
			}
		}
		cancel()
	}
}
