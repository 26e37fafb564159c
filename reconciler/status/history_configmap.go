package status

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/util/retry"
)

// historyKey is the ConfigMap's key that holds the history, as JSON.
const historyKey = "history.json"

// MaxHistoryBytes bounds the history a HistoryConfigMap or a HistoryFile writes,
// well under the 1 MiB Kubernetes allows a ConfigMap: the oldest passes go first.
const MaxHistoryBytes = 512 << 10

// HistoryConfigMap keeps the history in a ConfigMap of the management cluster,
// which Meridian creates and owns (labelled app.kubernetes.io/managed-by:
// meridian). Save merges what it is given with what the ConfigMap holds, so that
// the replicas of a daemon that share it (ha) add their passes to one history
// instead of overwriting each other's; it keeps the newest passes that fit
// MaxHistoryBytes.
type HistoryConfigMap struct {
	// Client reaches the management cluster's ConfigMaps.
	Client corev1client.ConfigMapsGetter
	// Namespace and Name name the ConfigMap.
	Namespace, Name string
	// Keep bounds the passes kept, whichever replica ran them; zero means the
	// HistorySize of the Store whose Options.History it is (DefaultHistorySize
	// when used alone).
	Keep int
}

var _ HistoryStore = HistoryConfigMap{}

// Load reads the ConfigMap; a missing ConfigMap is an empty history.
func (h HistoryConfigMap) Load(ctx context.Context) ([]PassRecord, error) {
	cm, err := h.Client.ConfigMaps(h.Namespace).Get(ctx, h.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ConfigMap/%s/%s: %w", h.Namespace, h.Name, err)
	}
	return h.decode(cm)
}

// decode reads the history of a ConfigMap.
func (h HistoryConfigMap) decode(cm *corev1.ConfigMap) ([]PassRecord, error) {
	data, ok := cm.Data[historyKey]
	if !ok {
		return nil, nil
	}
	var passes []PassRecord
	if err := json.Unmarshal([]byte(data), &passes); err != nil {
		return nil, fmt.Errorf("ConfigMap/%s/%s: %s: %w", h.Namespace, h.Name, historyKey, err)
	}
	return passes, nil
}

// Save merges passes into the ConfigMap, creating it when missing, and retrying
// when another writer changed it in between.
func (h HistoryConfigMap) Save(ctx context.Context, passes []PassRecord) error {
	cms := h.Client.ConfigMaps(h.Namespace)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cm, err := cms.Get(ctx, h.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			data, err := encodeHistory(passes, h.keep())
			if err != nil {
				return err
			}
			cm = &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: h.Name, Namespace: h.Namespace, Labels: map[string]string{
					"app.kubernetes.io/managed-by": "meridian", "app.kubernetes.io/component": "status-history",
				}},
				Data: map[string]string{historyKey: data},
			}
			_, err = cms.Create(ctx, cm, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return apierrors.NewConflict(corev1.Resource("configmaps"), h.Name, err)
			}
			return err
		}
		if err != nil {
			return err
		}
		stored, err := h.decode(cm)
		if err != nil {
			stored = nil // a history that cannot be read is replaced
		}
		merged := mergeHistory(stored, passes)
		data, err := encodeHistory(merged, h.keep())
		if err != nil {
			return err
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data[historyKey] = data
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("ConfigMap/%s/%s: %w", h.Namespace, h.Name, err)
	}
	return nil
}

// keep is Keep or its default.
func (h HistoryConfigMap) keep() int {
	if h.Keep <= 0 {
		return DefaultHistorySize
	}
	return h.Keep
}

// mergeHistory returns the passes of a and b, each once (by revision and
// start), in the order they finished.
func mergeHistory(a, b []PassRecord) []PassRecord {
	type key struct {
		revision string
		start    int64
	}
	seen := map[key]bool{}
	var out []PassRecord
	for _, p := range slices.Concat(a, b) {
		k := key{p.Revision, p.Start.UnixNano()}
		if !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	slices.SortStableFunc(out, func(x, y PassRecord) int { return cmp.Compare(finished(x), finished(y)) })
	return out
}

// finished is when a pass finished, in Unix nanoseconds.
func finished(p PassRecord) int64 {
	return p.Start.Add(time.Duration(p.DurationSeconds * float64(time.Second))).UnixNano()
}

// encodeHistory encodes the newest passes, at most keep of them, that fit
// MaxHistoryBytes.
func encodeHistory(passes []PassRecord, keep int) (string, error) {
	if over := len(passes) - keep; over > 0 {
		passes = passes[over:]
	}
	for {
		data, err := json.Marshal(passes)
		if err != nil {
			return "", err
		}
		if len(data) <= MaxHistoryBytes || len(passes) == 0 {
			return string(data), nil
		}
		// Drop the oldest tenth (at least one) and try again.
		passes = passes[max(1, len(passes)/10):]
	}
}
