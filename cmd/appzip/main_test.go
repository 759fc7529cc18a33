package main

import (
	"archive/zip"
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// repoRoot is the function app's root: this module's.
var repoRoot = filepath.Join("..", "..")

// executablePath reads where host.json tells the host to find the handler.
func executablePath(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "host.json"))
	require.NoError(t, err)
	var host struct {
		CustomHandler struct {
			Description struct {
				DefaultExecutablePath string
			}
		}
	}
	require.NoError(t, json.Unmarshal(b, &host))
	require.NotEmpty(t, host.CustomHandler.Description.DefaultExecutablePath)
	return host.CustomHandler.Description.DefaultExecutablePath
}

// extract copies a zip entry to a file of its own.
func extract(t *testing.T, f *zip.File) string {
	t.Helper()
	rc, err := f.Open()
	require.NoError(t, err)
	defer rc.Close()
	p := filepath.Join(t.TempDir(), filepath.Base(f.Name))
	out, err := os.Create(p)
	require.NoError(t, err)
	_, err = io.Copy(out, rc)
	require.NoError(t, err)
	require.NoError(t, out.Close())
	return p
}

// TestPackageMakesTheZipAFunctionAppRuns does what `make package` does: it
// builds the real handler and packs it, then reads the zip back as the
// Functions Linux workers would.
func TestPackageMakesTheZipAFunctionAppRuns(t *testing.T) {
	out := filepath.Join(t.TempDir(), "dist", "GraphUsersTimer.zip")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-root", repoRoot, "-o", out}, os.Environ(), &stdout, &stderr)
	require.NoError(t, err, "stderr: %s", stderr.String())
	assert.Contains(t, stdout.String(), "CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -buildvcs=auto -trimpath '-ldflags=-s -w' -o ")
	assert.Contains(t, stdout.String(), "wrote "+out+": 3 entries")

	fi, err := os.Stat(out)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
	zr, err := zip.OpenReader(out)
	require.NoError(t, err)
	defer zr.Close()

	exe := executablePath(t)
	files := map[string]*zip.File{}
	var names []string
	for _, f := range zr.File {
		files[f.Name] = f
		names = append(names, f.Name)
	}
	assert.ElementsMatch(t, []string{"host.json", "GraphUsersTimer/function.json", exe}, names,
		"the app root's files at the zip's root, nothing else")

	for _, name := range []string{"host.json", "GraphUsersTimer/function.json"} {
		f := files[name]
		require.NotNil(t, f, name)
		assert.Equal(t, os.FileMode(0o644), f.Mode(), name)
		want, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(name)))
		require.NoError(t, err)
		got, err := os.ReadFile(extract(t, f))
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got), name)
	}

	h := files[exe]
	require.NotNil(t, h, exe)
	assert.Equal(t, os.FileMode(0o755), h.Mode(), "the handler's entry records the executable bit")
	assert.Equal(t, uint16(3), h.CreatorVersion>>8, "made on Unix, so unzip reads the mode")
	assert.Equal(t, uint32(0o100755), h.ExternalAttrs>>16)

	bin := extract(t, h)
	ef, err := elf.Open(bin)
	require.NoError(t, err)
	defer ef.Close()
	assert.Equal(t, elf.ELFCLASS64, ef.Class)
	assert.Equal(t, elf.EM_X86_64, ef.Machine)
	assert.Equal(t, elf.ELFOSABI_NONE, ef.OSABI, "Go's linux binaries carry the System V ABI")
	assert.Equal(t, elf.ET_EXEC, ef.Type)
	for _, p := range ef.Progs {
		assert.NotEqual(t, elf.PT_INTERP, p.Type, "static: no program interpreter")
	}
	assert.Nil(t, ef.Section(".symtab"), "stripped: no symbol table")
	assert.Nil(t, ef.Section(".debug_info"), "stripped: no DWARF")

	bi, err := buildinfo.ReadFile(bin)
	require.NoError(t, err)
	assert.Equal(t, "graphuserstimer/cmd/handler", bi.Path)
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	assert.Equal(t, "linux", settings["GOOS"])
	assert.Equal(t, "amd64", settings["GOARCH"])
	assert.Equal(t, "0", settings["CGO_ENABLED"])
	// With -trimpath, Go leaves -ldflags out of the build info: the missing
	// .symtab above is what shows -s.
	assert.Equal(t, "true", settings["-trimpath"])
	if _, err := os.Stat(filepath.Join(repoRoot, ".git")); err == nil {
		assert.Regexp(t, `^[0-9a-f]{40}$`, settings["vcs.revision"], "a checkout's build says which commit it is")
	}
}

func TestPackageRefusesAHandlerTheWorkersCannotRunAndWritesNoZip(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "handler")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\necho hi\n"), 0o755))
	out := filepath.Join(dir, "dist", "app.zip")
	var stdout, stderr bytes.Buffer

	err := run(context.Background(), []string{"-root", repoRoot, "-o", out, "-handler", script}, nil, &stdout, &stderr)

	require.Error(t, err)
	assert.Contains(t, err.Error(), "not an ELF executable for Linux")
	assert.NoFileExists(t, out)
}

func TestPackageSaysWhichBuildFailed(t *testing.T) {
	out := filepath.Join(t.TempDir(), "app.zip")
	var stdout, stderr bytes.Buffer

	err := run(context.Background(), []string{"-root", repoRoot, "-o", out, "-pkg", "./cmd/no-such-command"}, os.Environ(), &stdout, &stderr)

	require.Error(t, err)
	assert.Contains(t, err.Error(), "build ./cmd/no-such-command")
	assert.NotEmpty(t, stderr.String(), "go build's own message is passed on")
	assert.NoFileExists(t, out)
}

func TestPackageRefusesStrayArguments(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"extra"}, nil, &stdout, &stderr)
	assert.ErrorContains(t, err, `unexpected arguments ["extra"]`)
}
