package image

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// File is one regular file or directory of an image's filesystem.
type File struct {
	Header *tar.Header
	Data   []byte // nil for a directory
}

// Files reads the filesystem of img, its layers flattened as a container
// runtime unpacks them, by absolute path ("/usr/local/bin/meridian").
func Files(img v1.Image) (map[string]File, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	files := map[string]File{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("image: reading its filesystem: %w", err)
		}
		name := "/" + strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		f := File{Header: h}
		if h.Typeflag == tar.TypeReg {
			if f.Data, err = io.ReadAll(tr); err != nil {
				return nil, fmt.Errorf("image: %s: %w", name, err)
			}
		}
		files[name] = f
	}
}
