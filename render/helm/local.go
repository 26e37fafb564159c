package helm

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/ignore"
	"sigs.k8s.io/yaml"
)

// maxSymlinks bounds how many symlinks one path may pass through, as the kernel does.
const maxSymlinks = 40

// utf8BOM is stripped from chart files, as Helm's directory loader does.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// loadLocal loads the request's chart directory from the snapshot.
func loadLocal(req Request) (*chart.Chart, location, error) {
	files, loc, err := readLocal(req)
	if err != nil {
		return nil, loc, err
	}
	if !slices.ContainsFunc(files, func(f *loader.BufferedFile) bool { return f.Name == "Chart.yaml" }) {
		return nil, loc, fmt.Errorf("%s: no such file; a chart directory needs a Chart.yaml (helm create writes one), or point helm.chart in %s at the chart directory", loc.at("Chart.yaml"), loc.appFile)
	}
	ch, err := loader.LoadFiles(files)
	if err != nil {
		return nil, loc, loadError(loc, files, err)
	}
	if err := checkDependencies(ch, loc, ""); err != nil {
		return nil, loc, err
	}
	return ch, loc, nil
}

// readLocal reads the files Helm loads from the request's chart directory: every file
// under it that .helmignore does not exclude, following symlinks that stay inside the
// snapshot. The names are slash-separated and relative to the chart directory.
func readLocal(req Request) ([]*loader.BufferedFile, location, error) {
	appFile := req.appFile()
	loc := location{appFile: appFile}
	chartPath := req.Source.Chart
	if path.IsAbs(chartPath) {
		return nil, loc, fmt.Errorf("%s: chart path %s is absolute; give the chart directory relative to app.yaml", appFile, chartPath)
	}
	dir := path.Join(path.Clean(req.AppDir), chartPath)
	if dir == ".." || strings.HasPrefix(dir, "../") {
		return nil, loc, fmt.Errorf("%s: chart path %s leaves the repository", appFile, chartPath)
	}
	loc.dir = dir

	root, err := os.OpenRoot(req.Root)
	if err != nil {
		return nil, loc, fmt.Errorf("%s: open repository snapshot: %w", appFile, err)
	}
	defer root.Close()

	real, err := resolve(root, dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, loc, fmt.Errorf("%s: chart path %s: directory %s does not exist", appFile, chartPath, dir)
		}
		return nil, loc, fmt.Errorf("%s: chart path %s: %w", appFile, chartPath, err)
	}
	fi, err := root.Stat(real)
	if err != nil {
		return nil, loc, fmt.Errorf("%s: chart path %s: %w", appFile, chartPath, err)
	}
	if !fi.IsDir() {
		return nil, loc, fmt.Errorf("%s: chart path %s is not a directory; point helm.chart at the directory holding Chart.yaml", appFile, chartPath)
	}

	w := &walker{root: root, loc: loc}
	if w.rules, err = w.ignoreRules(real); err != nil {
		return nil, loc, err
	}
	if err := w.walk(real, "", []string{real}); err != nil {
		return nil, loc, err
	}
	return w.files, loc, nil
}

// walker reads a chart directory through an os.Root.
type walker struct {
	root  *os.Root
	loc   location
	rules *ignore.Rules
	files []*loader.BufferedFile
}

// ignoreRules reads the chart's .helmignore, if any, with Helm's defaults added.
func (w *walker) ignoreRules(real string) (*ignore.Rules, error) {
	rules := ignore.Empty()
	p, err := resolve(w.root, path.Join(real, ignore.HelmIgnore))
	var esc *escapeError
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case errors.As(err, &esc):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("%s: %w", w.loc.at(ignore.HelmIgnore), err)
	default:
		data, err := w.root.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", w.loc.at(ignore.HelmIgnore), err)
		}
		if rules, err = ignore.Parse(bytes.NewReader(data)); err != nil {
			return nil, fmt.Errorf("%s: %w", w.loc.at(ignore.HelmIgnore), err)
		}
	}
	rules.AddDefaults()
	return rules, nil
}

// walk reads the directory real (a symlink-free path in the root) whose name in the
// chart is name. stack holds the directories being walked, to refuse symlink loops.
func (w *walker) walk(real, name string, stack []string) error {
	f, err := w.root.Open(real)
	if err != nil {
		return fmt.Errorf("%s: %w", w.loc.at(name), err)
	}
	entries, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", w.loc.at(name), err)
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })

	for _, e := range entries {
		n := path.Join(name, e.Name())
		p := path.Join(real, e.Name())
		fi, err := e.Info()
		if err != nil {
			return fmt.Errorf("%s: %w", w.loc.at(n), err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if p, err = resolve(w.root, p); err != nil {
				var esc *escapeError
				if errors.As(err, &esc) {
					return err
				}
				return fmt.Errorf("%s: %w", w.loc.at(n), err)
			}
			if fi, err = w.root.Stat(p); err != nil {
				return fmt.Errorf("%s: %w", w.loc.at(n), err)
			}
		}
		if w.rules.Ignore(n, fi) {
			continue
		}
		if fi.IsDir() {
			if slices.Contains(stack, p) {
				return fmt.Errorf("%s: symlink loop back to %s; remove the link", w.loc.at(n), p)
			}
			if err := w.walk(p, n, append(stack, p)); err != nil {
				return err
			}
			continue
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s: not a regular file; a chart holds only files and directories", w.loc.at(n))
		}
		if fi.Size() > loader.MaxDecompressedFileSize {
			return fmt.Errorf("%s: larger than Helm's %d byte limit for a chart file; list it in .helmignore", w.loc.at(n), loader.MaxDecompressedFileSize)
		}
		data, err := w.root.ReadFile(p)
		if err != nil {
			return fmt.Errorf("%s: %w", w.loc.at(n), err)
		}
		w.files = append(w.files, &loader.BufferedFile{Name: n, Data: bytes.TrimPrefix(data, utf8BOM)})
	}
	return nil
}

// escapeError is a symlink whose target lies outside the repository snapshot.
type escapeError struct {
	link, target string
}

// Error starts with the symlink's path in the repository, the file to fix.
func (e *escapeError) Error() string {
	return fmt.Sprintf("%s: symlink to %s leaves the repository; replace it with the file itself or a relative link that stays inside", e.link, e.target)
}

// resolve follows the symlinks of the clean, slash-separated, root-relative path p and
// returns the path it leads to, free of symlinks (or "." for the root itself). A
// symlink with an absolute target, or one whose target climbs above the root, is an
// *escapeError: a checkout's meaning must not depend on where it is on disk.
//
// Every directory already passed is symlink-free, so ".." in a link target is resolved
// lexically; the os.Root the files are then read through refuses anything that would
// still escape.
func resolve(root *os.Root, p string) (string, error) {
	rest := strings.Split(p, "/")
	cur, links := "", 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		if c == "" || c == "." {
			continue
		}
		next := path.Join(cur, c)
		fi, err := root.Lstat(next)
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if links++; links > maxSymlinks {
			return "", fmt.Errorf("too many levels of symlinks at %s", next)
		}
		target, err := root.Readlink(next)
		if err != nil {
			return "", err
		}
		joined := path.Join(cur, target)
		if path.IsAbs(target) || joined == ".." || strings.HasPrefix(joined, "../") {
			return "", &escapeError{link: next, target: target}
		}
		rest = append(strings.Split(joined, "/"), rest...)
		cur = ""
	}
	if cur == "" {
		return ".", nil
	}
	return cur, nil
}

// checkDependencies refuses a chart whose Chart.yaml declares a dependency that is not
// among its loaded subcharts, and looks into the subcharts likewise. Helm would refuse
// to install it; the fix is to vendor the dependency. prefix is the subchart's path
// inside the top chart ("" for the top chart itself).
func checkDependencies(ch *chart.Chart, loc location, prefix string) error {
	var missing []string
	for _, dep := range ch.Metadata.Dependencies {
		if dep == nil {
			continue
		}
		if !slices.ContainsFunc(ch.Dependencies(), func(sub *chart.Chart) bool { return sub.Name() == dep.Name }) {
			missing = append(missing, strings.TrimSpace(dep.Name+" "+dep.Version))
		}
	}
	switch len(missing) {
	case 0:
	case 1:
		return fmt.Errorf("%s: dependency %s is not vendored under %s; vendor it with helm dependency build", loc.at(prefix+"Chart.yaml"), missing[0], loc.at(prefix+"charts/"))
	default:
		return fmt.Errorf("%s: dependencies %s are not vendored under %s; vendor them with helm dependency build", loc.at(prefix+"Chart.yaml"), strings.Join(missing, ", "), loc.at(prefix+"charts/"))
	}
	subs := slices.Clone(ch.Dependencies())
	slices.SortFunc(subs, func(a, b *chart.Chart) int { return strings.Compare(a.Name(), b.Name()) })
	for _, sub := range subs {
		if err := checkDependencies(sub, loc, prefix+"charts/"+sub.Name()+"/"); err != nil {
			return err
		}
	}
	return nil
}

// loadError locates an error of Helm's chart loader at the chart file it concerns.
// The loader names the file only in its message, so the files it parses are parsed
// again here, in its order and as it parses them: the first that does not parse is
// the one it refused. A chart whose files all parse failed elsewhere (a subchart,
// say) and is reported as a whole.
func loadError(loc location, files []*loader.BufferedFile, err error) error {
	var verr chart.ValidationError
	if errors.As(err, &verr) {
		return fmt.Errorf("%s: %w", loc.at("Chart.yaml"), err)
	}
	if name, perr := unparsable(files); perr != nil {
		return fmt.Errorf("%s: %w", loc.at(name), perr)
	}
	return fmt.Errorf("%s: %w", loc.chart(), err)
}

// unparsable returns the first of a chart's own files that loader.LoadFiles would
// fail to parse, and why: Chart.yaml first, then Chart.lock, values.yaml and the
// deprecated requirements files in the order given, each into what the loader
// parses it into.
func unparsable(files []*loader.BufferedFile) (string, error) {
	for _, f := range files {
		if f.Name == "Chart.yaml" {
			if err := yaml.Unmarshal(f.Data, new(chart.Metadata)); err != nil {
				return f.Name, err
			}
		}
	}
	for _, f := range files {
		var into any
		switch f.Name {
		case "Chart.lock", "requirements.lock":
			into = new(chart.Lock)
		case "values.yaml":
			into = &map[string]any{}
		case "requirements.yaml":
			into = new(chart.Metadata)
		default:
			continue
		}
		if err := yaml.Unmarshal(f.Data, into); err != nil {
			return f.Name, err
		}
	}
	return "", nil
}
