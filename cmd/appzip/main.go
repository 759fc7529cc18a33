// Command appzip builds the handler for the Functions Linux workers and packs
// the Function App into the zip that zip deployment takes as is: host.json,
// GraphUsersTimer/function.json and the handler, whose entry records the
// executable bit. `make package` runs it.
//
// The handler is built static (CGO_ENABLED=0) for linux/amd64, with
// -trimpath and stripped (-ldflags=-s -w), and checked before it is packed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"graphuserstimer/internal/appzip"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "appzip:", err)
		os.Exit(1)
	}
}

// buildEnv makes `go build` produce what the Functions Linux workers run,
// whatever machine it runs on: no cgo, so no C library to match.
var buildEnv = []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64"}

// buildFlags are the flags of `go build`: the commit it was built from, when
// built in a git checkout, whatever GOFLAGS says (go version -m shows it); no
// local paths in the binary; and no symbol table or DWARF, which the workers
// never read.
var buildFlags = []string{"-buildvcs=auto", "-trimpath", "-ldflags=-s -w"}

// run builds the handler (or takes -handler as built) and writes the zip.
// environ is the environment `go build` runs in, before buildEnv.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("appzip", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", ".", "the function app's root `folder`: host.json, GraphUsersTimer/, and the Go module")
	out := fs.String("o", "dist/GraphUsersTimer.zip", "the zip `file` to write")
	pkg := fs.String("pkg", "./cmd/handler", "the handler's main `package`, built in -root")
	goTool := fs.String("go", "go", "the go `command`")
	handler := fs.String("handler", "", "pack this already built handler `file` instead of building -pkg (it is still checked)")
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil // the usage is already on stderr
	}
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	exe := *handler
	if exe == "" {
		tmp, err := os.MkdirTemp("", "appzip-")
		if err != nil {
			return fmt.Errorf("make a build folder: %w", err)
		}
		defer os.RemoveAll(tmp)
		exe = filepath.Join(tmp, "handler")
		if err := build(ctx, *goTool, *root, *pkg, exe, environ, stdout, stderr); err != nil {
			return err
		}
	}
	if err := appzip.CheckHandler(exe); err != nil {
		return err
	}
	entries, err := appzip.Entries(*root, exe)
	if err != nil {
		return err
	}
	if err := writeZip(*out, entries); err != nil {
		return err
	}
	return describe(stdout, *out, entries)
}

// build runs `go build` for the Functions Linux workers, saying what it runs.
func build(ctx context.Context, goTool, root, pkg, exe string, environ []string, stdout, stderr io.Writer) error {
	args := append(append([]string{"build"}, buildFlags...), "-o", exe, pkg)
	cmd := exec.CommandContext(ctx, goTool, args...)
	cmd.Dir = root
	cmd.Env = append(append([]string(nil), environ...), buildEnv...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	fmt.Fprintf(stdout, "%s %s %s\n", strings.Join(buildEnv, " "), goTool, quote(args))
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build %s: %w", pkg, err)
	}
	return nil
}

// quote joins args for display, quoting those with spaces.
func quote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = a
		if strings.ContainsAny(a, " \t") {
			q[i] = "'" + a + "'"
		}
	}
	return strings.Join(q, " ")
}

// writeZip writes the zip next to out and renames it into place, so a failed
// run never leaves half a zip where a deployment would pick it up.
func writeZip(out string, entries []appzip.Entry) (err error) {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("make the folder of %s: %w", out, err)
	}
	f, err := os.CreateTemp(filepath.Dir(out), filepath.Base(out)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := appzip.Write(f, entries); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	if err := os.Rename(f.Name(), out); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return nil
}

// describe prints each entry with its mode and size, then the zip's size.
func describe(stdout io.Writer, out string, entries []appzip.Entry) error {
	for _, e := range entries {
		fi, err := os.Stat(e.Source)
		if err != nil {
			return fmt.Errorf("describe %s: %w", e.Name, err)
		}
		fmt.Fprintf(stdout, "  %04o %10d  %s\n", e.Mode.Perm(), fi.Size(), e.Name)
	}
	fi, err := os.Stat(out)
	if err != nil {
		return fmt.Errorf("describe %s: %w", out, err)
	}
	fmt.Fprintf(stdout, "wrote %s: %d entries, %d bytes\n", out, len(entries), fi.Size())
	return nil
}
