// Package appzip writes the zip that deploys a custom handler Function App:
// host.json, each function's folder and the handler executable, with the
// executable bit recorded in the handler's entry. Zips made by some tools, on
// Windows in particular, record no Unix mode, and the Linux workers then
// cannot start the handler.
package appzip

import (
	"archive/zip"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Modes recorded in the zip: the handler must be executable; the JSON files
// are read by the host.
const (
	ExecutableMode fs.FileMode = 0o755
	FileMode       fs.FileMode = 0o644
)

// ModTime is the modification time of every entry, so that the same files
// always make the same zip. It is the earliest time a zip can hold.
var ModTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// HostFile is the app's host configuration, at the root of the app and of
// the zip.
const HostFile = "host.json"

// Entry is one file of the zip and where its content comes from.
type Entry struct {
	// Name is the path inside the zip, with forward slashes.
	Name string
	// Source is the file on disk whose content is stored.
	Source string
	// Mode is the Unix mode recorded for the entry.
	Mode fs.FileMode
}

// ExecutablePath reads host.json under root and returns its
// customHandler.description.defaultExecutablePath as a zip entry name: the
// path, relative to the app root, where the host looks for the handler.
func ExecutablePath(root string) (string, error) {
	p := filepath.Join(root, HostFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", HostFile, err)
	}
	var host struct {
		CustomHandler struct {
			Description struct {
				DefaultExecutablePath string `json:"defaultExecutablePath"`
			} `json:"description"`
		} `json:"customHandler"`
	}
	if err := json.Unmarshal(b, &host); err != nil {
		return "", fmt.Errorf("parse %s: %w", p, err)
	}
	exe := host.CustomHandler.Description.DefaultExecutablePath
	if exe == "" {
		return "", fmt.Errorf("%s: customHandler.description.defaultExecutablePath is empty: it names the handler the host starts", p)
	}
	name := path.Clean(filepath.ToSlash(exe))
	if path.IsAbs(name) || filepath.IsAbs(exe) || name == ".." || strings.HasPrefix(name, "../") {
		return "", fmt.Errorf("%s: defaultExecutablePath %q must be a path inside the app root", p, exe)
	}
	return name, nil
}

// Entries lists what the app at root deploys: host.json, every
// <folder>/function.json, and the handler file stored under host.json's
// defaultExecutablePath. It checks that the JSON files parse, so a typo fails
// here rather than in the Function App.
func Entries(root, handler string) ([]Entry, error) {
	exe, err := ExecutablePath(root)
	if err != nil {
		return nil, err
	}
	functions, err := filepath.Glob(filepath.Join(root, "*", "function.json"))
	if err != nil {
		return nil, fmt.Errorf("find function.json under %s: %w", root, err)
	}
	if len(functions) == 0 {
		return nil, fmt.Errorf("no <function>/function.json under %s: run from the function app's root", root)
	}
	entries := []Entry{{Name: HostFile, Source: filepath.Join(root, HostFile), Mode: FileMode}}
	for _, f := range functions {
		if err := checkJSON(f); err != nil {
			return nil, err
		}
		entries = append(entries, Entry{
			Name:   filepath.Base(filepath.Dir(f)) + "/function.json",
			Source: f,
			Mode:   FileMode,
		})
	}
	entries = append(entries, Entry{Name: exe, Source: handler, Mode: ExecutableMode})
	return entries, nil
}

func checkJSON(p string) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	if !json.Valid(b) {
		return fmt.Errorf("%s is not valid JSON", p)
	}
	return nil
}

// Write writes the zip of entries to w: entries sorted by name, each with
// ModTime and its mode recorded as Unix attributes, so the same files always
// make the same bytes. Two entries with one name are refused.
func Write(w io.Writer, entries []Entry) error {
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	for i := 1; i < len(sorted); i++ {
		if sorted[i].Name == sorted[i-1].Name {
			return fmt.Errorf("two entries named %s", sorted[i].Name)
		}
	}
	zw := zip.NewWriter(w)
	for _, e := range sorted {
		if err := add(zw, e); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("finish the zip: %w", err)
	}
	return nil
}

// add stores one entry, compressed.
func add(zw *zip.Writer, e Entry) error {
	f, err := os.Open(e.Source)
	if err != nil {
		return fmt.Errorf("add %s: %w", e.Name, err)
	}
	defer f.Close()
	h := &zip.FileHeader{Name: e.Name, Method: zip.Deflate, Modified: ModTime}
	// SetMode also marks the entry as made on Unix: unzip tools and the
	// Functions Linux workers read the mode only from such entries.
	h.SetMode(e.Mode)
	dst, err := zw.CreateHeader(h)
	if err != nil {
		return fmt.Errorf("add %s: %w", e.Name, err)
	}
	if _, err := io.Copy(dst, f); err != nil {
		return fmt.Errorf("add %s from %s: %w", e.Name, e.Source, err)
	}
	return nil
}

// CheckHandler checks that the file at p is what the Functions Linux workers
// can run: a 64-bit x86-64 Linux ELF executable that is statically linked
// (no program interpreter, so it needs no C library of a particular
// version). For a Go binary it also checks the GOOS and GOARCH it was built
// for.
func CheckHandler(p string) error {
	f, err := elf.Open(p)
	if err != nil {
		return fmt.Errorf("handler %s is not an ELF executable for Linux: %w", p, err)
	}
	defer f.Close()
	var problems []error
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 {
		problems = append(problems, fmt.Errorf("built for %s %s, want ELFCLASS64 EM_X86_64 (GOARCH=amd64)", f.Class, f.Machine))
	}
	if f.OSABI != elf.ELFOSABI_NONE && f.OSABI != elf.ELFOSABI_LINUX {
		problems = append(problems, fmt.Errorf("built for OS ABI %s, want Linux (GOOS=linux)", f.OSABI))
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		problems = append(problems, fmt.Errorf("ELF type %s is not an executable", f.Type))
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			problems = append(problems, errors.New("dynamically linked (it has a program interpreter): build with CGO_ENABLED=0"))
			break
		}
	}
	if bi, err := buildinfo.ReadFile(p); err == nil {
		for _, s := range bi.Settings {
			if (s.Key == "GOOS" && s.Value != "linux") || (s.Key == "GOARCH" && s.Value != "amd64") {
				problems = append(problems, fmt.Errorf("Go build setting %s=%s, want linux/amd64", s.Key, s.Value))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("handler %s cannot run on the Functions Linux workers: %w", p, errors.Join(problems...))
	}
	return nil
}
