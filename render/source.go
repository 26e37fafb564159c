package render

import (
	"path"
	"strings"

	"sigs.k8s.io/yaml"
)

// sourceOf says where a unit's objects come from, for people: "chart
// apps/portal/chart (portal 0.3.1)" for a chart of the repository, with the name
// and version its Chart.yaml gives, "chart oci://registry/charts podinfo
// 6.5.0" for a pinned chart of a chart repository, "kustomize apps/api/base"
// for a Kustomize directory, "" for a namespace unit. A Chart.yaml that cannot be
// read leaves the version out: the render that follows says why.
func (run *renderRun) sourceOf(j job) string {
	appDir := path.Dir(j.appFile)
	switch {
	case j.helm != nil && j.helm.Repository != "":
		return strings.TrimSpace("chart " + j.helm.Repository + " " + j.helm.Name + " " + j.helm.Version)
	case j.helm != nil:
		dir := path.Join(appDir, j.helm.Chart)
		run.mu.Lock()
		defer run.mu.Unlock()
		if s, ok := run.sources[dir]; ok {
			return s
		}
		s := "chart " + dir
		if data, err := readInSnapshot(run.snap.Dir, path.Join(dir, "Chart.yaml")); err == nil {
			var meta struct {
				Name    string `json:"name"`
				Version string `json:"version"`
			}
			if yaml.Unmarshal(data, &meta) == nil && meta.Version != "" {
				s += " (" + meta.Name + " " + meta.Version + ")"
			}
		}
		run.sources[dir] = s
		return s
	case j.kust != nil:
		return "kustomize " + path.Join(appDir, j.kust.Path)
	}
	return ""
}
