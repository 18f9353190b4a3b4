// Package clitest runs the cradle binary as a user or a script does, for the tests that drive
// Cradle through its command line (test/e2e, test/torture): it builds the binary once per test
// run and runs it without touching real hardware.
package clitest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Main builds the cradle command into a temporary folder, sets *bin to it, runs the package's
// tests and exits with their status; call it from TestMain.
func Main(m *testing.M, bin *string) {
	dir, err := os.MkdirTemp("", "cradle-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*bin = filepath.Join(dir, "cradle")
	_, here, _, _ := runtime.Caller(0)
	build := exec.Command("go", "build", "-o", *bin, ".")
	build.Dir = filepath.Join(filepath.Dir(here), "..", "..")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build cradle:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Command returns the binary with args, in an environment that keeps it off real USB devices
// and gives it a UTF-8 locale.
func Command(ctx context.Context, bin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "CRADLE_NO_HARDWARE=1", "LANG=C.UTF-8")
	return cmd
}

// Run runs cmd to its end and returns what it printed and its exit code; err is set only when
// it could not be run at all.
func Run(cmd *exec.Cmd) (stdout, stderr string, code int, err error) {
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code, err = ee.ExitCode(), nil
	}
	return out.String(), errb.String(), code, err
}
