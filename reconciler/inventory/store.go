package inventory

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
)

// Where and how inventories are kept in a region's cluster.
const (
	// Namespace is the namespace that holds the inventory ConfigMaps.
	Namespace = fleet.SystemNamespace
	// LabelInventory marks an inventory ConfigMap; its value is the format version.
	LabelInventory = "meridian.dev/inventory"
	// FormatV1 is the only format this Meridian reads and writes.
	FormatV1 = "v1"
	// AnnotationUnit names the unit of an inventory ConfigMap, for people reading it.
	AnnotationUnit = "meridian.dev/unit"
	// DataKey is the ConfigMap data key that holds the inventory as JSON.
	DataKey = "inventory.json"
)

// Store keeps the inventories of one region's units in that region's cluster. It is
// safe for concurrent use; writes to different units do not wait for each other.
type Store struct {
	cfg        *rest.Config
	configMaps typedcorev1.ConfigMapInterface
	namespaces typedcorev1.NamespaceInterface

	mu       sync.Mutex
	versions map[fleet.UnitID]version
	listed   bool // a List succeeded: units it did not return are known to be absent
	watch    *watch
	// decoded are the inventories the last List decoded, by ConfigMap name, with
	// the resourceVersion they were decoded at: a List decodes again only the
	// ConfigMaps that changed since (a pass after a one-tenant change decodes a
	// handful, not every unit of the region).
	decoded map[string]decodedInventory
}

// decodedInventory is an inventory as decode read it from a ConfigMap at
// resourceVersion.
type decodedInventory struct {
	resourceVersion string
	inv             plan.Inventory
}

// version is what a Store knows of a unit's ConfigMap: its resourceVersion when it
// last read or wrote it ("" for none), or that it does not know.
type version struct {
	resourceVersion string
	known           bool
}

// NewStore returns a Store for the cluster cfg points at. It needs to list, create,
// update and delete ConfigMaps in Namespace, and to create that namespace. Without a
// rate limit of its own, cfg is given 50 requests a second (burst 100), as the
// applier is: every unit applied writes its inventory twice, and client-go's default
// of 5 a second would make the first apply of a few hundred units take minutes.
func NewStore(cfg *rest.Config) (*Store, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 && cfg.RateLimiter == nil {
		cfg.QPS, cfg.Burst = 50, 100
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	return &Store{
		cfg:        cfg,
		configMaps: cs.CoreV1().ConfigMaps(Namespace),
		namespaces: cs.CoreV1().Namespaces(),
		versions:   map[fleet.UnitID]version{},
	}, nil
}

// Name returns the name of the ConfigMap that holds unit's inventory: a readable form
// of the ID (lowercase, "/" turned into ".", anything else that a name cannot hold
// turned into "-", shortened) followed by a hash of the exact ID, so every ID has a
// valid name and different IDs never share one.
func Name(unit fleet.UnitID) string {
	id := unit.String()
	sum := sha256.Sum256([]byte(id))
	hash := hex.EncodeToString(sum[:])[:12]
	var b strings.Builder
	for _, r := range strings.ToLower(id) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '/':
			b.WriteByte('.')
		default:
			b.WriteByte('-')
		}
	}
	// Every dot-separated label must start and end with a letter or digit.
	var labels []string
	for l := range strings.SplitSeq(b.String(), ".") {
		if l = strings.Trim(l, "-"); l != "" {
			labels = append(labels, l)
		}
	}
	readable := strings.Join(labels, ".")
	const maxReadable = 200 // of the 253 a name may have
	if len(readable) > maxReadable {
		readable = strings.TrimRight(readable[:maxReadable], ".-")
	}
	if readable == "" {
		return "inventory-" + hash
	}
	return "inventory." + readable + "-" + hash
}

// ref names a unit's ConfigMap the way errors do.
func ref(unit fleet.UnitID) string { return "ConfigMap/" + Namespace + "/" + Name(unit) }

// List returns the inventory of every unit recorded in the region, sorted by unit. An
// entry that cannot be read is an error naming its ConfigMap: an inventory is never
// silently dropped, since that would make its objects unknown and never pruned.
// After Watch, it reads them from the watch when it can (see Watch).
func (s *Store) List(ctx context.Context) ([]plan.Inventory, error) {
	if out, ok, err := s.fromWatch(ctx); ok || err != nil {
		return out, err
	}
	var (
		cms  []*corev1.ConfigMap
		opts = metav1.ListOptions{LabelSelector: LabelInventory, Limit: 500}
	)
	for {
		list, err := s.configMaps.List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("inventory: list ConfigMaps in namespace %s: %w", Namespace, err)
		}
		for i := range list.Items {
			cms = append(cms, &list.Items[i])
		}
		if list.Continue == "" {
			break
		}
		opts.Continue = list.Continue
	}
	return s.decodeAll(cms)
}

// decodeAll decodes every inventory ConfigMap a List found, sorted by unit, and
// remembers their versions; one that cannot be read is an error naming it.
//
// A ConfigMap at the resourceVersion the previous call decoded it at is not
// decoded again: the same resourceVersion is the same content. The inventories
// returned share their slices with that memo, clipped, so a caller's append
// never writes into them; callers only read them.
func (s *Store) decodeAll(cms []*corev1.ConfigMap) ([]plan.Inventory, error) {
	s.mu.Lock()
	prev := s.decoded
	s.mu.Unlock()
	var (
		out      = make([]plan.Inventory, 0, len(cms))
		versions = make(map[fleet.UnitID]version, len(cms))
		decoded  = make(map[string]decodedInventory, len(cms))
		errs     []error
	)
	for _, cm := range cms {
		d, ok := prev[cm.Name]
		if !ok || cm.ResourceVersion == "" || d.resourceVersion != cm.ResourceVersion {
			inv, err := decode(cm)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			inv.Objects, inv.Adopted, inv.Hooks = slices.Clip(inv.Objects), slices.Clip(inv.Adopted), slices.Clip(inv.Hooks)
			d = decodedInventory{resourceVersion: cm.ResourceVersion, inv: inv}
		}
		out = append(out, d.inv)
		versions[d.inv.Unit] = version{resourceVersion: cm.ResourceVersion, known: true}
		if cm.ResourceVersion != "" {
			decoded[cm.Name] = d
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b plan.Inventory) int { return a.Unit.Compare(b.Unit) })
	s.mu.Lock()
	s.versions, s.listed, s.decoded = versions, true, decoded
	s.mu.Unlock()
	return out, nil
}

// Get returns unit's inventory, or nil when it has none. A corrupt entry is an error
// naming it.
func (s *Store) Get(ctx context.Context, unit fleet.UnitID) (*plan.Inventory, error) {
	cm, err := s.configMaps.Get(ctx, Name(unit), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		s.remember(unit, "")
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: read inventory of %s: %w", ref(unit), unit, err)
	}
	inv, err := decode(cm)
	if err != nil {
		return nil, err
	}
	s.remember(unit, cm.ResourceVersion)
	return &inv, nil
}

// decode reads an inventory ConfigMap, refusing anything that is not exactly what Put
// writes.
func decode(cm *corev1.ConfigMap) (plan.Inventory, error) {
	name := "ConfigMap/" + cm.Namespace + "/" + cm.Name
	const fix = "repair or delete it (deleting it makes Meridian forget the objects it applied for that unit, which are then never pruned)"
	if v := cm.Labels[LabelInventory]; v != FormatV1 {
		return plan.Inventory{}, fmt.Errorf("%s: inventory format %q is not %q: it was written by another Meridian version; run a Meridian that reads it, or %s", name, v, FormatV1, fix)
	}
	data, ok := cm.Data[DataKey]
	if !ok {
		return plan.Inventory{}, fmt.Errorf("%s: corrupt inventory: no data key %s; %s", name, DataKey, fix)
	}
	var inv plan.Inventory
	dec := json.NewDecoder(strings.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&inv); err != nil {
		return plan.Inventory{}, fmt.Errorf("%s: corrupt inventory: %s is not an inventory: %v; %s", name, DataKey, err, fix)
	}
	if dec.More() {
		return plan.Inventory{}, fmt.Errorf("%s: corrupt inventory: %s holds more than one JSON value; %s", name, DataKey, fix)
	}
	if inv.Unit.IsZero() {
		return plan.Inventory{}, fmt.Errorf("%s: corrupt inventory: no unit; %s", name, fix)
	}
	if want := Name(inv.Unit); cm.Name != want {
		return plan.Inventory{}, fmt.Errorf("%s: corrupt inventory: it records unit %s, whose inventory is named %s; %s", name, inv.Unit, want, fix)
	}
	for i, r := range inv.Objects {
		if r.Version == "" || r.Kind == "" || r.Name == "" {
			return plan.Inventory{}, fmt.Errorf("%s: corrupt inventory: objects[%d] lacks a version, kind or name; %s", name, i, fix)
		}
	}
	return inv, nil
}

// Put records inv as its unit's inventory, replacing what was recorded, in one write.
// It fails with a conflict when the entry changed in the cluster since this Store
// last read or wrote it; List again (or simply Put again) to start from what the
// cluster holds.
func (s *Store) Put(ctx context.Context, inv plan.Inventory) error {
	if inv.Unit.IsZero() {
		return errors.New("inventory: Put: the inventory names no unit")
	}
	data, err := encode(inv)
	if err != nil {
		return fmt.Errorf("%s: inventory of %s: %w", ref(inv.Unit), inv.Unit, err)
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:      Name(inv.Unit),
			Namespace: Namespace,
			Labels: map[string]string{
				render.LabelManagedBy: render.ManagedByMeridian,
				LabelInventory:        FormatV1,
			},
			Annotations: map[string]string{AnnotationUnit: inv.Unit.String()},
		},
		Data: map[string]string{DataKey: data},
	}

	rv, known := s.version(inv.Unit)
	if !known {
		cur, err := s.configMaps.Get(ctx, cm.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return fmt.Errorf("%s: read inventory of %s: %w", ref(inv.Unit), inv.Unit, err)
		default:
			rv = cur.ResourceVersion
		}
	}

	var written *corev1.ConfigMap
	if rv == "" {
		written, err = s.create(ctx, cm)
	} else {
		cm.ResourceVersion = rv
		written, err = s.configMaps.Update(ctx, cm, metav1.UpdateOptions{FieldManager: "meridian"})
	}
	if err != nil {
		s.forget(inv.Unit)
		if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) || (rv != "" && apierrors.IsNotFound(err)) {
			return fmt.Errorf("%s: inventory of %s changed in the cluster since Meridian read it (another writer?); list the inventories again and retry: %w", ref(inv.Unit), inv.Unit, err)
		}
		return fmt.Errorf("%s: write inventory of %s: %w", ref(inv.Unit), inv.Unit, err)
	}
	s.remember(inv.Unit, written.ResourceVersion)
	return nil
}

// create creates an inventory ConfigMap, and the namespace first when it is missing.
func (s *Store) create(ctx context.Context, cm *corev1.ConfigMap) (*corev1.ConfigMap, error) {
	opts := metav1.CreateOptions{FieldManager: "meridian"}
	written, err := s.configMaps.Create(ctx, cm, opts)
	if !apierrors.IsNotFound(err) {
		return written, err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   Namespace,
		Labels: map[string]string{render.LabelManagedBy: render.ManagedByMeridian},
	}}
	if _, err := s.namespaces.Create(ctx, ns, opts); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create namespace %s: %w", Namespace, err)
	}
	return s.configMaps.Create(ctx, cm, opts)
}

// encode writes an inventory as compact, deterministic JSON.
func encode(inv plan.Inventory) (string, error) {
	if inv.Objects == nil {
		inv.Objects = []plan.ObjectRef{}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(inv); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// Delete removes unit's inventory in one write; an inventory that does not exist is
// success. Call it only after every object of the unit was pruned.
func (s *Store) Delete(ctx context.Context, unit fleet.UnitID) error {
	opts := metav1.DeleteOptions{}
	if rv, ok := s.version(unit); ok && rv != "" {
		opts.Preconditions = &metav1.Preconditions{ResourceVersion: &rv}
	}
	err := s.configMaps.Delete(ctx, Name(unit), opts)
	switch {
	case err == nil, apierrors.IsNotFound(err):
		s.remember(unit, "")
		return nil
	case apierrors.IsConflict(err):
		s.forget(unit)
		return fmt.Errorf("%s: inventory of %s changed in the cluster since Meridian read it (another writer?); list the inventories again and retry: %w", ref(unit), unit, err)
	}
	s.forget(unit)
	return fmt.Errorf("%s: delete inventory of %s: %w", ref(unit), unit, err)
}

// version returns the resourceVersion of unit's ConfigMap as this Store last saw it
// ("" when it did not exist), and whether it knows it at all.
func (s *Store) version(unit fleet.UnitID) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.versions[unit]; ok {
		return v.resourceVersion, v.known
	}
	return "", s.listed
}

func (s *Store) remember(unit fleet.UnitID, rv string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.versions[unit] = version{resourceVersion: rv, known: true}
}

func (s *Store) forget(unit fleet.UnitID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.versions[unit] = version{}
}
