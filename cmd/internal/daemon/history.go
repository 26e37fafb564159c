package daemon

import (
	"fmt"
	"path/filepath"

	"meridian.dev/meridian/config"
	"meridian.dev/meridian/reconciler/shard"
	"meridian.dev/meridian/reconciler/status"
)

// historyStore is where the daemon keeps the dashboard's history of passes: the
// ConfigMap management.historyConfigMap names in the management cluster, or
// status/history.json in stateDir.
func historyStore(cfg *config.Config) (status.HistoryStore, error) {
	if cfg.Management.HistoryConfigMap == "" {
		return status.HistoryFile{Path: filepath.Join(cfg.StateDir, "status", "history.json")}, nil
	}
	ns, name, err := cfg.Management.HistoryConfigMapName()
	if err != nil {
		return nil, err
	}
	client, err := shard.NewClient(shard.ClientOptions{Kubeconfig: cfg.Kubeconfig, Context: cfg.Management.KubeconfigContext})
	if err != nil {
		return nil, fmt.Errorf("management.historyConfigMap: %w", err)
	}
	return status.HistoryConfigMap{Client: client.CoreV1(), Namespace: ns, Name: name}, nil
}
