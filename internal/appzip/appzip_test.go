package appzip

import (
	"archive/zip"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeFile writes body at root/name, making its folders.
func writeFile(t *testing.T, root, name, body string) string {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(name))
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

// readZip opens a zip held in memory.
func readZip(t *testing.T, b []byte) *zip.Reader {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	require.NoError(t, err)
	return zr
}

func TestWriteRecordsUnixModesAndMakesTheSameBytesEveryTime(t *testing.T) {
	dir := t.TempDir()
	entries := []Entry{
		{Name: "host.json", Source: writeFile(t, dir, "a", `{"version":"2.0"}`), Mode: FileMode},
		{Name: "handler", Source: writeFile(t, dir, "b", "\x7fELF..."), Mode: ExecutableMode},
		{Name: "Fn/function.json", Source: writeFile(t, dir, "c", `{"bindings":[]}`), Mode: FileMode},
	}
	var first, second bytes.Buffer
	require.NoError(t, Write(&first, entries))
	// The files' own modes and times differ from what is recorded: only the
	// entries' say what the zip holds.
	require.NoError(t, os.Chtimes(entries[0].Source, ModTime.AddDate(30, 0, 0), ModTime.AddDate(30, 0, 0)))
	require.NoError(t, Write(&second, entries))
	assert.Equal(t, first.Bytes(), second.Bytes(), "the same files make the same zip")

	zr := readZip(t, first.Bytes())
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		assert.Equal(t, uint16(3), f.CreatorVersion>>8, "%s is marked as made on Unix, where the mode is read", f.Name)
		assert.True(t, f.Modified.Equal(ModTime), "%s: %v", f.Name, f.Modified)
		assert.Equal(t, zip.Deflate, f.Method)
	}
	assert.Equal(t, []string{"Fn/function.json", "handler", "host.json"}, names, "entries are sorted")

	modes := map[string]uint32{}
	for _, f := range zr.File {
		modes[f.Name] = f.ExternalAttrs >> 16
	}
	assert.Equal(t, map[string]uint32{
		"Fn/function.json": 0o100644, "handler": 0o100755, "host.json": 0o100644,
	}, modes, "regular files with the Unix modes in the external attributes")

	rc, err := zr.Open("handler")
	require.NoError(t, err)
	defer rc.Close()
	body, err := io.ReadAll(rc)
	require.NoError(t, err)
	assert.Equal(t, "\x7fELF...", string(body))
}

func TestWriteRefusesTwoEntriesWithOneName(t *testing.T) {
	src := writeFile(t, t.TempDir(), "a", "x")
	err := Write(io.Discard, []Entry{{Name: "handler", Source: src}, {Name: "handler", Source: src}})
	assert.ErrorContains(t, err, "two entries named handler")
}

func TestWriteNamesTheEntryWhoseSourceIsMissing(t *testing.T) {
	err := Write(io.Discard, []Entry{{Name: "handler", Source: filepath.Join(t.TempDir(), "nope")}})
	require.ErrorIs(t, err, os.ErrNotExist)
	assert.ErrorContains(t, err, "add handler")
}

func TestEntriesOfTheRepositoryApp(t *testing.T) {
	root := filepath.Join("..", "..")
	entries, err := Entries(root, "built-handler")
	require.NoError(t, err)
	assert.Equal(t, []Entry{
		{Name: "host.json", Source: filepath.Join(root, "host.json"), Mode: 0o644},
		{Name: "GraphUsersTimer/function.json", Source: filepath.Join(root, "GraphUsersTimer", "function.json"), Mode: 0o644},
		{Name: "handler", Source: "built-handler", Mode: 0o755},
	}, entries)
}

func TestEntriesStoreTheHandlerWhereHostJSONLooksForIt(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "host.json", `{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"bin/./app"}}}`)
	writeFile(t, root, "Nightly/function.json", `{"bindings":[]}`)
	writeFile(t, root, "Hourly/function.json", `{"bindings":[]}`)
	writeFile(t, root, "notes/readme.txt", "not deployed")

	entries, err := Entries(root, "out/app")
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name)
	}
	assert.ElementsMatch(t, []string{"host.json", "Nightly/function.json", "Hourly/function.json", "bin/app"}, names)
	assert.Equal(t, Entry{Name: "bin/app", Source: "out/app", Mode: ExecutableMode}, entries[len(entries)-1])
}

func TestEntriesSayWhatIsWrongWithTheApp(t *testing.T) {
	const fn = `{"bindings":[]}`
	tests := []struct {
		name, host, function, want string
	}{
		{"no host.json", "", fn, "read host.json"},
		{"host.json that is not JSON", `{`, fn, "parse"},
		{"no defaultExecutablePath", `{"customHandler":{"description":{}}}`, fn, "defaultExecutablePath is empty"},
		{"an absolute defaultExecutablePath", `{"customHandler":{"description":{"defaultExecutablePath":"/usr/bin/handler"}}}`, fn, "inside the app root"},
		{"a defaultExecutablePath outside the app", `{"customHandler":{"description":{"defaultExecutablePath":"../handler"}}}`, fn, "inside the app root"},
		{"no function", `{"customHandler":{"description":{"defaultExecutablePath":"handler"}}}`, "", "no <function>/function.json"},
		{"a function.json that is not JSON", `{"customHandler":{"description":{"defaultExecutablePath":"handler"}}}`, `{"bindings":[`, "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if tt.host != "" {
				writeFile(t, root, "host.json", tt.host)
			}
			if tt.function != "" {
				writeFile(t, root, "Fn/function.json", tt.function)
			}
			_, err := Entries(root, "handler")
			assert.ErrorContains(t, err, tt.want)
		})
	}
}

// fakeELF writes the smallest ELF header debug/elf reads, with one program
// header of type prog when prog is not PT_NULL.
func fakeELF(t *testing.T, class elf.Class, osabi elf.OSABI, machine elf.Machine, prog elf.ProgType) string {
	t.Helper()
	var b bytes.Buffer
	ident := [elf.EI_NIDENT]byte{0x7f, 'E', 'L', 'F', byte(class), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT), byte(osabi)}
	phnum := uint16(0)
	if prog != elf.PT_NULL {
		phnum = 1
	}
	le := binary.LittleEndian
	if class == elf.ELFCLASS32 {
		require.NoError(t, binary.Write(&b, le, elf.Header32{Ident: ident, Type: uint16(elf.ET_EXEC), Machine: uint16(machine),
			Version: 1, Phoff: 52, Ehsize: 52, Phentsize: 32, Phnum: phnum, Shentsize: 40}))
		if phnum > 0 {
			require.NoError(t, binary.Write(&b, le, elf.Prog32{Type: uint32(prog)}))
		}
	} else {
		require.NoError(t, binary.Write(&b, le, elf.Header64{Ident: ident, Type: uint16(elf.ET_EXEC), Machine: uint16(machine),
			Version: 1, Phoff: 64, Ehsize: 64, Phentsize: 56, Phnum: phnum, Shentsize: 64}))
		if phnum > 0 {
			require.NoError(t, binary.Write(&b, le, elf.Prog64{Type: uint32(prog)}))
		}
	}
	p := filepath.Join(t.TempDir(), "handler")
	require.NoError(t, os.WriteFile(p, b.Bytes(), 0o755))
	return p
}

func TestCheckHandlerAcceptsAStaticLinuxAMD64Executable(t *testing.T) {
	assert.NoError(t, CheckHandler(fakeELF(t, elf.ELFCLASS64, elf.ELFOSABI_NONE, elf.EM_X86_64, elf.PT_LOAD)))
	assert.NoError(t, CheckHandler(fakeELF(t, elf.ELFCLASS64, elf.ELFOSABI_LINUX, elf.EM_X86_64, elf.PT_NULL)))
}

func TestCheckHandlerRefusesWhatTheLinuxWorkersCannotRun(t *testing.T) {
	tests := []struct {
		name    string
		handler func(t *testing.T) string
		want    string
	}{
		{"a script", func(t *testing.T) string { return writeFile(t, t.TempDir(), "handler", "#!/bin/sh\n") }, "not an ELF executable"},
		{"an arm64 build", func(t *testing.T) string {
			return fakeELF(t, elf.ELFCLASS64, elf.ELFOSABI_NONE, elf.EM_AARCH64, elf.PT_LOAD)
		}, "EM_AARCH64"},
		{"a 32-bit build", func(t *testing.T) string {
			return fakeELF(t, elf.ELFCLASS32, elf.ELFOSABI_NONE, elf.EM_386, elf.PT_LOAD)
		}, "want ELFCLASS64 EM_X86_64"},
		{"a FreeBSD build", func(t *testing.T) string {
			return fakeELF(t, elf.ELFCLASS64, elf.ELFOSABI_FREEBSD, elf.EM_X86_64, elf.PT_LOAD)
		}, "GOOS=linux"},
		{"a dynamically linked build", func(t *testing.T) string {
			return fakeELF(t, elf.ELFCLASS64, elf.ELFOSABI_NONE, elf.EM_X86_64, elf.PT_INTERP)
		}, "CGO_ENABLED=0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckHandler(tt.handler(t))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
