package main

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"

	"meridian.dev/meridian/internal/image"
)

// imageFlags are the flags of `meridian-dev image`.
type imageFlags struct {
	out, push, version, revision, source string
	created                              string
	platforms                            []string
}

func newImageCommand() *cobra.Command {
	var f imageFlags
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Build Meridian's multi-architecture OCI image (make image), optionally push it",
		Long: `image builds the meridian binary for every platform and an OCI image index of
them, without a container daemon, into an OCI layout directory; with --push it
also pushes the index and its SBOMs to a registry (credentials from the docker
config, as other registry clients read them). The same commit, version and
created time give the same digest. See deploy/README.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			created, err := parseCreated(f.created)
			if err != nil {
				return err
			}
			res, err := image.Build(ctx, image.Options{
				Dir:       ".",
				Version:   f.version,
				Revision:  f.revision,
				Source:    f.source,
				Created:   created,
				Platforms: f.platforms,
				Progress:  cmd.ErrOrStderr(),
			})
			if err != nil {
				return err
			}
			if err := res.WriteLayout(f.out); err != nil {
				return err
			}
			digest, err := res.Index.Digest()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", f.out, digest)
			if f.push == "" {
				return nil
			}
			ref, err := name.ParseReference(f.push)
			if err != nil {
				return fmt.Errorf("--push: %w", err)
			}
			if _, err := res.Push(ref, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s@%s\n", ref.Context(), digest)
			return nil
		},
	}
	cmd.Flags().StringVar(&f.out, "out", "dist/image", "the OCI layout directory to write (replaced)")
	cmd.Flags().StringVar(&f.push, "push", "", "also push to this reference (registry/repository:tag)")
	cmd.Flags().StringVar(&f.version, "version", "", "the version stamped into the binary and the labels (required)")
	cmd.Flags().StringVar(&f.revision, "revision", "", "the full commit id (required)")
	cmd.Flags().StringVar(&f.source, "source", "https://meridian.dev/meridian", "the source repository's URL, for the org.opencontainers.image.source label")
	cmd.Flags().StringVar(&f.created, "created", os.Getenv("SOURCE_DATE_EPOCH"), "the image's time, in Unix seconds or RFC 3339: the commit's (default $SOURCE_DATE_EPOCH)")
	cmd.Flags().StringSliceVar(&f.platforms, "platform", image.DefaultPlatforms, "the platforms to build, os/arch")
	return cmd
}

// parseCreated reads Unix seconds (SOURCE_DATE_EPOCH's form) or RFC 3339.
func parseCreated(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("--created: required (the commit's time, e.g. $(git log -1 --format=%%ct))")
	}
	if secs, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(secs, 0).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--created: %q is neither Unix seconds nor RFC 3339", s)
	}
	return t, nil
}
