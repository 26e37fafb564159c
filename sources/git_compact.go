package sources

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage"
)

// maxPacks is the number of pack files above which the cached repository is
// compacted after a fetch.
const maxPacks = 4

// maybeCompact compacts the cached repository when incremental fetches have
// left many loose objects or packs behind. Compaction failing is logged, not
// returned: the fetch it follows succeeded.
func (g *Git) maybeCompact(st storage.Storer, head plumbing.Hash) {
	loose, packs := countObjects(filepath.Join(g.repoDir, "objects"))
	if loose <= g.compactLoose && packs <= maxPacks {
		return
	}
	if err := g.compact(st, head); err != nil {
		g.log.Warn("cannot compact the cached repository; it keeps working, only larger", "url", g.url, "err", err)
		return
	}
	g.log.Info("compacted the cached repository", "url", g.url, "looseObjects", loose, "packs", packs)
}

// compact replaces the cached repository by a new one holding a single pack
// of the head commit and its tree, which is all a depth-1 fetch needs. It is
// built next to the old one and swapped in by renaming; if the process stops
// half-way, the next start removes the leftover and, at worst, the next fetch
// transfers the whole revision again.
//
// go-git cannot repack or prune a shallow repository (its walkers follow
// parents that are not there), hence this.
func (g *Git) compact(st storage.Storer, head plumbing.Hash) error {
	hashes, err := commitObjects(st, head)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(g.opts.CacheDir, ".repo-")
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			_ = removeTree(tmp)
		}
	}()
	repo, err := git.PlainInit(tmp, true)
	if err != nil {
		return err
	}
	pw, ok := repo.Storer.(storer.PackfileWriter)
	if !ok {
		return errors.New("storage cannot write packs")
	}
	w, err := pw.PackfileWriter()
	if err != nil {
		return err
	}
	if _, err := packfile.NewEncoder(w, st, false).Encode(hashes, 10); err != nil {
		w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	if err := repo.Storer.SetReference(plumbing.NewHashReference(headRef, head)); err != nil {
		return err
	}
	c, err := object.GetCommit(st, head)
	if err != nil {
		return err
	}
	if len(c.ParentHashes) > 0 {
		if err := repo.Storer.SetShallow([]plumbing.Hash{head}); err != nil {
			return err
		}
	}

	old := filepath.Join(g.opts.CacheDir, ".repo-old-"+filepath.Base(tmp))
	if err := os.Rename(g.repoDir, old); err != nil {
		return err
	}
	if err := os.Rename(tmp, g.repoDir); err != nil {
		return err
	}
	done = true
	return removeTree(old)
}

// commitObjects lists the commit, its tree and every tree and blob below it.
func commitObjects(st storer.EncodedObjectStorer, head plumbing.Hash) ([]plumbing.Hash, error) {
	c, err := object.GetCommit(st, head)
	if err != nil {
		return nil, err
	}
	tree, err := c.Tree()
	if err != nil {
		return nil, err
	}
	seen := map[plumbing.Hash]bool{}
	hashes := []plumbing.Hash{head, tree.Hash}
	w := object.NewTreeWalker(tree, true, seen)
	defer w.Close()
	for {
		_, entry, err := w.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if entry.Mode == filemode.Submodule || seen[entry.Hash] {
			continue
		}
		seen[entry.Hash] = true
		hashes = append(hashes, entry.Hash)
	}
	return hashes, nil
}

// countObjects counts the loose objects and the packs under an objects
// directory.
func countObjects(dir string) (loose, packs int) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0
	}
	for _, e := range entries {
		if len(e.Name()) == 2 && e.IsDir() {
			sub, err := os.ReadDir(filepath.Join(dir, e.Name()))
			if err == nil {
				loose += len(sub)
			}
		}
	}
	pack, err := os.ReadDir(filepath.Join(dir, "pack"))
	if err == nil {
		for _, e := range pack {
			if strings.HasSuffix(e.Name(), ".pack") {
				packs++
			}
		}
	}
	return loose, packs
}
