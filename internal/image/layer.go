package image

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// entry is one file or directory of a layer. Owners are root unless uid is
// set; modes are fixed here, never read from the build machine.
type entry struct {
	name string // relative, without a leading slash
	mode int64
	uid  int
	data []byte // nil for a directory
}

// The users and groups the image knows: root owns the files, nonroot runs the
// daemon. Programs that look a user up (Go's os/user) find it.
const (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	group  = "root:x:0:\nnonroot:x:65532:\n"
)

// baseLayer is what every platform's image shares: CA certificates, passwd and
// group, the nonroot user's home and /tmp.
func baseLayer(created time.Time) (v1.Layer, error) {
	certs, err := caBundle()
	if err != nil {
		return nil, err
	}
	return newLayer(created, []entry{
		{name: strings.TrimPrefix(CACertsPath, "/"), mode: 0o644, data: certs},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "home/nonroot", mode: 0o700, uid: 65532},
		{name: "tmp", mode: 0o1777},
	})
}

// binaryLayer holds the binary at BinaryPath.
func binaryLayer(bin string, created time.Time) (v1.Layer, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	return newLayer(created, []entry{{name: strings.TrimPrefix(BinaryPath, "/"), mode: 0o755, data: data}})
}

// newLayer writes the entries, and every parent directory they need, as a tar
// sorted by name, every entry at time created, and hands it to
// go-containerregistry as a gzip-compressed OCI layer (its gzip writes no name
// or time, so the same entries give the same digest).
func newLayer(created time.Time, entries []entry) (v1.Layer, error) {
	all := map[string]entry{}
	for _, e := range entries {
		for dir := path.Dir(e.name); dir != "."; dir = path.Dir(dir) {
			if _, ok := all[dir]; !ok {
				all[dir] = entry{name: dir, mode: 0o755}
			}
		}
	}
	for _, e := range entries {
		all[e.name] = e
	}
	names := make([]string, 0, len(all))
	for name := range all {
		names = append(names, name)
	}
	sort.Strings(names)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range names {
		e := all[name]
		h := &tar.Header{
			Name:    e.name,
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.uid,
			ModTime: created,
			Format:  tar.FormatPAX,
		}
		if e.data == nil {
			h.Typeflag = tar.TypeDir
			h.Name += "/"
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
}
