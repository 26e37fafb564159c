package live

import (
	"sync"

	"k8s.io/client-go/tools/cache"
)

// WatchFailure is an informer's last watch error, kept until the informer lists
// or watches past it: its last synced resourceVersion moved on from the one it
// failed at. An event queued before the failure does not clear it. The zero value
// holds no failure; it is safe for concurrent use.
type WatchFailure struct {
	mu  sync.Mutex
	err error
	at  string // the informer's last synced resourceVersion when it failed
}

// Set records err as inf's failure.
func (f *WatchFailure) Set(inf cache.SharedIndexInformer, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err, f.at = err, inf.LastSyncResourceVersion()
}

// Err returns inf's failure, nil once inf synced past it.
func (f *WatchFailure) Err(inf cache.SharedIndexInformer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil && inf.LastSyncResourceVersion() != f.at {
		f.err = nil
	}
	return f.err
}
