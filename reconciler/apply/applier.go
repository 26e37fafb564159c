package apply

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/pkg/ssa"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler/live"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
)

// FieldManager is the one server-side apply field manager Meridian writes with, as
// itself and when impersonating a tenant. Fields it owns are the fields Drift checks.
const FieldManager = live.FieldManager

// Inventory keeps units' inventories in the region; *inventory.Store is one. Put
// and Delete each make a single atomic write, or fail and leave what was recorded in
// place: the applier's crash safety rests on that.
type Inventory interface {
	// List returns every unit's inventory, or an error: never a partial list.
	List(ctx context.Context) ([]plan.Inventory, error)
	// Get returns one unit's inventory, nil when it has none.
	Get(ctx context.Context, unit fleet.UnitID) (*plan.Inventory, error)
	// Put replaces a unit's inventory.
	Put(ctx context.Context, inv plan.Inventory) error
	// Delete removes a unit's inventory; one that does not exist is success.
	Delete(ctx context.Context, unit fleet.UnitID) error
}

// Options configure an Applier.
type Options struct {
	// Inventory records what each unit applied, before and after each apply.
	// Required.
	Inventory Inventory
	// Logger receives a line per object Prune leaves in place, and Region's line per
	// unit it changed; nil discards.
	Logger *slog.Logger
	// Concurrency bounds the server-side dry-runs run at once; 0 means 4.
	Concurrency int
	// StageTimeout bounds the wait for Namespaces, CRDs and cluster roles to become
	// ready before the objects that need them are applied; 0 means one minute.
	StageTimeout time.Duration
	// HookTimeout bounds each Helm hook: the deletion of its previous object, and
	// the run of a Job or Pod; and the wait for a unit to become Ready before its
	// post-install or post-upgrade hooks run. 0 means five minutes, as Helm's
	// default.
	HookTimeout time.Duration
	// PollInterval is the longest time between Wait's reads of the objects' status
	// (the first come sooner, see Wait); 0 means two seconds. With Live, Wait
	// polls only the objects the watches cannot answer for.
	PollInterval time.Duration
	// Live, when set, holds the region's objects as watches see them
	// (*live.Cache): Health reads them there instead of asking the API server,
	// Wait waits for their changes instead of polling, and Region follows the
	// health of the units it waited for between passes (Region.Observe). Objects
	// the watches cannot answer for are read from the API server. Nil reads
	// everything from the API server.
	Live Live
}

// Live is a watch of the region's objects Meridian applied; *live.Cache is one.
type Live interface {
	// Get returns the object as the watch last saw it, nil when a synced watch does
	// not hold it; an error when the watch cannot answer (not synced, failing,
	// stopped), and the caller reads the API server. The object is the caller's:
	// a fresh copy on each call.
	Get(ctx context.Context, ref plan.ObjectRef) (*unstructured.Unstructured, error)
	// Lookup is Get without decoding the object: what the watch holds of it,
	// shared and never changed. Drift reads only its resourceVersion and
	// fingerprint, of every object on every pass.
	Lookup(ctx context.Context, ref plan.ObjectRef) (*live.Object, error)
	// Changed returns a channel closed at the next change seen of any of refs, or
	// when a watch fails or stops; cancel forgets it.
	Changed(refs []plan.ObjectRef) (changed <-chan struct{}, cancel func())
	// OnChange registers fn, called quickly with every object seen to change.
	OnChange(fn func(plan.ObjectRef))
}

// Applier writes units into one region's cluster: server-side apply, prune, health
// and drift. It is safe for concurrent use by units of different tenants; one unit
// must not be applied twice at once.
type Applier struct {
	opts   Options
	config *rest.Config
	mapper meta.RESTMapper
	admin  client.Client
	poller *polling.StatusPoller
	self   *ssa.ResourceManager

	// reads bounds the Health reads in flight: a region of hundreds of units
	// waiting at once would otherwise hold a request, and its response, for each.
	reads chan struct{}

	mu      sync.Mutex
	tenants map[string]*tenantClient
	// created are the namespaces this pass created: they did not exist when it
	// began, so nothing in them is older than the pass (see Existing). Region's
	// Inventories, which starts a pass, forgets them.
	created map[string]bool
	// written is the resourceVersion of each object Meridian last wrote, until
	// Live shows that version or a later one: until then Live's copy is older
	// than the write, and health is read from the API server.
	written map[live.Key]string
	// replicas are the replicas Meridian applies each workload with, as the
	// units Region waited for render them (see objectHealth).
	replicas map[live.Key]int64
	// applied is, for each object Meridian applied, what it applied and the
	// fields that left Meridian's (see appliedFields); kept only with Live, whose
	// copies Drift compares with it.
	applied map[live.Key]appliedFields
}

// healthReads is how many units' Health reads one region runs at once.
const healthReads = 16

// tenantClient writes as one tenant's ServiceAccount.
type tenantClient struct {
	client  client.Client
	manager *ssa.ResourceManager
}

// New returns an Applier for the cluster cfg points at. cfg is Meridian's own
// access: it applies namespace units with it, reads status with it, and must be
// allowed to impersonate the tenants' ServiceAccounts. Without a rate limit of its
// own, cfg is given 50 requests a second (burst 100), as Flux runs with.
func New(cfg *rest.Config, opts Options) (*Applier, error) {
	if opts.Inventory == nil {
		return nil, errors.New("apply: Options.Inventory is required: an apply that is not recorded cannot be pruned later")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if opts.StageTimeout <= 0 {
		opts.StageTimeout = time.Minute
	}
	if opts.HookTimeout <= 0 {
		opts.HookTimeout = defaultHookTimeout
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 2 * time.Second
	}
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 && cfg.RateLimiter == nil {
		// client-go's default of 5 requests a second would make a region of a few
		// hundred objects take minutes to check; Flux runs with 50.
		cfg.QPS, cfg.Burst = 50, 100
	}
	if cfg.WarningHandler == nil && cfg.WarningHandlerWithContext == nil {
		// The API server's warnings (deprecated APIs, unknown fields dropped by
		// a non-strict decoder) go to Meridian's log, where operators read them.
		cfg.WarningHandlerWithContext = warnings{opts.Logger}
	}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	admin, err := client.New(cfg, client.Options{HTTPClient: httpClient, Mapper: mapper})
	if err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	a := &Applier{
		opts:     opts,
		config:   cfg,
		mapper:   mapper,
		admin:    admin,
		poller:   polling.NewStatusPoller(admin, mapper, polling.Options{}),
		tenants:  map[string]*tenantClient{},
		created:  map[string]bool{},
		written:  map[live.Key]string{},
		replicas: map[live.Key]int64{},
		applied:  map[live.Key]appliedFields{},
		reads:    make(chan struct{}, healthReads),
	}
	a.self = a.manager(admin)
	return a, nil
}

func (a *Applier) manager(c client.Client) *ssa.ResourceManager {
	m := ssa.NewResourceManager(objectClient{Client: c, wrote: a.wrote}, a.poller, ssa.Owner{Field: FieldManager, Group: "meridian.dev"})
	m.SetConcurrency(a.opts.Concurrency)
	return m
}

// TenantUser is the user a tenant's placements are applied as: the tenant's
// ServiceAccount, which the namespace unit binds to a Role in the tenant's namespace.
func TenantUser(tenant string) string {
	return "system:serviceaccount:" + tenant + ":" + render.TenantServiceAccount
}

// tenant returns the client that impersonates tenant's ServiceAccount.
func (a *Applier) tenant(tenant string) (*tenantClient, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if tc, ok := a.tenants[tenant]; ok {
		return tc, nil
	}
	cfg := rest.CopyConfig(a.config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: TenantUser(tenant)}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("apply: tenant %s: %w", tenant, err)
	}
	c, err := client.New(cfg, client.Options{HTTPClient: httpClient, Mapper: a.mapper})
	if err != nil {
		return nil, fmt.Errorf("apply: tenant %s: %w", tenant, err)
	}
	tc := &tenantClient{client: c, manager: a.manager(c)}
	a.tenants[tenant] = tc
	return tc, nil
}

// asMeridian reports whether an object of a placement is written as Meridian rather
// than as the tenant: only cluster-scoped objects, which render lets into a
// placement only when the fleet explicitly allows their kind for the app (the
// tenant's Role cannot grant anything outside its namespace). Everything namespaced,
// and anything whose scope is unknown, is written as the tenant.
func (a *Applier) asMeridian(u *unstructured.Unstructured, crdScopes map[schema.GroupKind]string) bool {
	if u.GetNamespace() != "" {
		return false
	}
	gvk := u.GroupVersionKind()
	if scope, ok := crdScopes[gvk.GroupKind()]; ok {
		return scope == "Cluster"
	}
	mapping, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return false
	}
	return mapping.Scope.Name() == meta.RESTScopeNameRoot
}

// crdScopes returns the scope of every kind a unit's CRDs define, for custom
// resources applied in the same unit as their definition.
func crdScopes(objects []*unstructured.Unstructured) map[schema.GroupKind]string {
	out := map[schema.GroupKind]string{}
	for _, u := range objects {
		if u.GroupVersionKind().GroupKind() != (schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}) {
			continue
		}
		group, _, _ := unstructured.NestedString(u.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(u.Object, "spec", "names", "kind")
		scope, _, _ := unstructured.NestedString(u.Object, "spec", "scope")
		out[schema.GroupKind{Group: group, Kind: kind}] = scope
	}
	return out
}

// writer is the client and resource manager of Meridian or of one tenant.
type writer struct {
	client  client.Client
	manager *ssa.ResourceManager
	tenant  bool
}

// asTenant reports whether a unit's namespaced objects are written as its tenant:
// a placement's are; a namespace unit's and an addon's (which belongs to no
// tenant, and which render confines to the namespaces it names) as Meridian.
func (a *Applier) asTenant(id fleet.UnitID) bool {
	return !id.IsNamespace() && !id.IsAddon()
}

// split divides a unit's objects between the writers that apply them: everything of
// a namespace unit or an addon as Meridian; for a placement, cluster-scoped objects
// as Meridian and the rest as the tenant.
func (a *Applier) split(id fleet.UnitID, objects []*unstructured.Unstructured) (self, tenant []*unstructured.Unstructured, tw writer, err error) {
	if !a.asTenant(id) {
		return objects, nil, writer{}, nil
	}
	tc, err := a.tenant(id.Tenant)
	if err != nil {
		return nil, nil, writer{}, err
	}
	scopes := crdScopes(objects)
	for _, u := range objects {
		if a.asMeridian(u, scopes) {
			self = append(self, u)
		} else {
			tenant = append(tenant, u)
		}
	}
	return self, tenant, writer{client: tc.client, manager: tc.manager, tenant: true}, nil
}

// writerFor returns who reads, deletes or dry-runs ref for a unit: the tenant for
// a placement's namespaced objects, Meridian otherwise.
func (a *Applier) writerFor(id fleet.UnitID, ref plan.ObjectRef) (writer, error) {
	if !a.asTenant(id) || ref.Namespace == "" {
		return writer{client: a.admin, manager: a.self}, nil
	}
	tc, err := a.tenant(id.Tenant)
	if err != nil {
		return writer{}, err
	}
	return writer{client: tc.client, manager: tc.manager, tenant: true}, nil
}

// stub is an object with only its identity, for reading and deleting by reference.
func stub(r plan.ObjectRef) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(r.GroupVersionKind())
	u.SetNamespace(r.Namespace)
	u.SetName(r.Name)
	return u
}

// warnings logs the API server's Warning headers.
type warnings struct{ log *slog.Logger }

func (w warnings) HandleWarningHeaderWithContext(ctx context.Context, code int, _ string, message string) {
	if code != 299 || message == "" {
		return
	}
	w.log.WarnContext(ctx, "the API server warned", "warning", message)
}
