//go:build !unix

package testbed

import (
	"context"
	"errors"
	"io"
	"syscall"
)

var errUnsupported = errors.New("testbed: only Linux and other Unix systems can run regions")

func childAttr(bool) *syscall.SysProcAttr { return nil }

func killGroup(int) error { return errUnsupported }

func alive(int) bool { return false }

func lockBuild(context.Context, string, io.Writer) (func(), error) { return nil, errUnsupported }
