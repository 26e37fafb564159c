package sources

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// prepareCache creates the cache directories, removes what an interrupted
// earlier run left half-written, and learns the snapshots already on disk,
// newest first, so retention also covers them.
func (g *Git) prepareCache() error {
	if err := os.MkdirAll(g.opts.CacheDir, 0o700); err != nil {
		return fmt.Errorf("%s: cache directory: %w", g.url, err)
	}
	if err := os.MkdirAll(g.snapshotDir, 0o755); err != nil {
		return fmt.Errorf("%s: cache directory: %w", g.url, err)
	}
	for _, dir := range []string{g.opts.CacheDir, g.snapshotDir} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("%s: cache directory: %w", g.url, err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".tmp-") || strings.HasPrefix(e.Name(), ".repo-") {
				if err := removeTree(filepath.Join(dir, e.Name())); err != nil {
					return fmt.Errorf("%s: cache directory: remove a leftover: %w", g.url, err)
				}
			}
		}
	}

	entries, err := os.ReadDir(g.snapshotDir)
	if err != nil {
		return fmt.Errorf("%s: cache directory: %w", g.url, err)
	}
	type found struct {
		rev string
		mod time.Time
	}
	var snaps []found
	for _, e := range entries {
		if !e.IsDir() || !isCommitHash(e.Name()) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		snaps = append(snaps, found{e.Name(), info.ModTime()})
	}
	slices.SortFunc(snaps, func(a, b found) int {
		if c := b.mod.Compare(a.mod); c != 0 {
			return c
		}
		return strings.Compare(a.rev, b.rev)
	})
	for _, s := range snaps {
		g.recent = append(g.recent, s.rev)
	}
	return nil
}

// retain removes the snapshots beyond the KeepSnapshots most recently
// returned, except those held. The rule is simple on purpose: the current
// and the previous snapshot are always kept (KeepSnapshots is at least 2), and
// a caller that reads an older one holds it.
//
// A snapshot leaves the snapshot directory at once, by a rename to a leftover
// name, and its files are removed in the background: removing a large fleet's
// tree takes long enough to delay the revision Fetch returns. A removal cut
// short by the process ending is a leftover the next start removes
// (prepareCache).
func (g *Git) retain() {
	g.mu.Lock()
	defer g.mu.Unlock()
	var kept []string
	for i, rev := range g.recent {
		if i < g.keep || g.holds[rev] > 0 {
			kept = append(kept, rev)
			continue
		}
		old := filepath.Join(g.snapshotDir, ".tmp-removed-"+rev)
		if err := os.Rename(filepath.Join(g.snapshotDir, rev), old); err != nil && !errors.Is(err, fs.ErrNotExist) {
			g.log.Warn("cannot remove an old snapshot; will try again after the next fetch", "url", g.url, "revision", rev, "err", err)
			kept = append(kept, rev)
			continue
		}
		g.removing.Go(func() {
			if err := removeTree(old); err != nil {
				g.log.Warn("cannot remove an old snapshot's files; the next start removes them", "url", g.url, "revision", rev, "err", err)
				return
			}
			g.log.Info("removed old snapshot", "url", g.url, "revision", rev)
		})
	}
	g.recent = kept
}

// waitRemovals waits until the snapshots retain removes in the background are
// gone.
func (g *Git) waitRemovals() { g.removing.Wait() }

// isCommitHash reports whether s is a full SHA-1 or SHA-256 hash in lower-case
// hex.
func isCommitHash(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}
