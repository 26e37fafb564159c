package sources

import (
	"fmt"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
)

// resolved is the reference a fetch follows, as the server advertised it.
type resolved struct {
	// name is the full reference name, such as "refs/tags/v1.2.0".
	name string
	// want is what the reference points at: a commit, or an annotated tag.
	want plumbing.Hash
	// commit is the commit the reference resolves to, or zero when that is
	// not known before fetching (a tag the server did not peel).
	commit plumbing.Hash
}

// resolve finds the configured reference among the advertised ones.
func (g *Git) resolve(ar *packp.AdvRefs) (resolved, error) {
	ref := g.opts.Ref
	notFound := func(msg, hint string) error {
		return &Error{URL: g.url, Kind: ErrRefNotFound, Msg: msg, Hint: hint}
	}
	switch {
	case ref.Branch != "":
		name := "refs/heads/" + ref.Branch
		h, ok := ar.References[name]
		if !ok {
			return resolved{}, notFound(fmt.Sprintf("branch %q not found", ref.Branch), "push the branch, or correct the branch name")
		}
		return resolved{name: name, want: h, commit: h}, nil
	case ref.Tag != "":
		name := "refs/tags/" + ref.Tag
		h, ok := ar.References[name]
		if !ok {
			return resolved{}, notFound(fmt.Sprintf("tag %q not found", ref.Tag), "push the tag, or correct the tag name")
		}
		return resolved{name: name, want: h, commit: ar.Peeled[name]}, nil
	default:
		name, ok := highestTag(g.constraint, ar.References)
		if !ok {
			return resolved{}, notFound(fmt.Sprintf("no tag satisfies semver range %q", ref.SemVer), "push a tag such as v1.2.3 within the range, or change the range")
		}
		return resolved{name: name, want: ar.References[name], commit: ar.Peeled[name]}, nil
	}
}

// highestTag returns the full name of the tag with the highest semantic
// version that satisfies c. Of tags naming the same version (such as "v1.0.0"
// and "1.0.0", or builds "1.0.0+a" and "1.0.0+b"), the greatest name wins, so
// the choice does not depend on map order.
func highestTag(c *semver.Constraints, refs map[string]plumbing.Hash) (string, bool) {
	var best string
	var bestV *semver.Version
	for name := range refs {
		tag, ok := strings.CutPrefix(name, "refs/tags/")
		if !ok || strings.HasSuffix(tag, "^{}") {
			continue
		}
		v, err := parseVersion(tag)
		if err != nil || !c.Check(v) {
			continue
		}
		if bestV == nil {
			best, bestV = name, v
			continue
		}
		switch cmp := v.Compare(bestV); {
		case cmp > 0, cmp == 0 && name > best:
			best, bestV = name, v
		}
	}
	return best, bestV != nil
}

// parseVersion parses a tag name as a strict semantic version
// (MAJOR.MINOR.PATCH[-pre][+build]), allowing a "v" prefix. Names such as
// "2024" or "1.2" are not versions.
func parseVersion(tag string) (*semver.Version, error) {
	return semver.StrictNewVersion(strings.TrimPrefix(tag, "v"))
}
