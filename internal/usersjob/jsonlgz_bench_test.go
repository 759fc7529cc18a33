package usersjob

import (
	"compress/gzip"
	"fmt"
	"syscall"
	"testing"
	"time"

	"graphuserstimer/internal/azurite"
	"graphuserstimer/internal/fakeazure"
	"graphuserstimer/internal/storage"
)

// listingNsPerUser is what listing a user costs the handler (graph's
// BenchmarkListUsers): the yardstick for an export's CPU, whose budget is
// half of it.
const listingNsPerUser = 2500

// benchLines is n user lines as Graph sends them with its default
// properties, about 360 bytes each, and their size with newlines.
func benchLines(n int) (lines [][]byte, raw int64) {
	lines = make([][]byte, n)
	for i := range lines {
		lines[i] = fakeazure.UserJSON(i, fakeazure.DefaultProperties)
		raw += int64(len(lines[i]) + 1)
	}
	return lines, raw
}

// BenchmarkGzipLevels measures compressing an export's lines at each gzip
// level, as gzipLines writes them: one Write a line. It reports wall and CPU
// ns/user, the compressed B/user, the compression ratio, and x-listing, the
// CPU as a share of the listing's per user (the budget is 0.5). CPU is the
// process's, as the listing's figure is: wall time counts the moments other
// work on the machine holds the core. fakeazure's users
// repeat more than a real directory's, so real ratios are somewhat lower.
//
//	go test -run '^$' -bench BenchmarkGzipLevels -benchtime 20x ./internal/usersjob
func BenchmarkGzipLevels(b *testing.B) {
	const users = 10_000
	lines, raw := benchLines(users)
	for _, level := range []struct {
		name  string
		level int
	}{
		{"BestSpeed", gzip.BestSpeed},
		{"DefaultCompression", gzip.DefaultCompression},
		{"HuffmanOnly", gzip.HuffmanOnly},
		{"NoCompression", gzip.NoCompression}, // the floor: framing and CRC alone
	} {
		b.Run(level.name, func(b *testing.B) {
			var out countingWriter
			zw, err := gzip.NewWriterLevel(&out, level.level)
			if err != nil {
				b.Fatal(err)
			}
			line := make([]byte, 0, 1024)
			b.SetBytes(raw)
			start := cpuTime(b)
			for b.Loop() {
				out = 0
				zw.Reset(&out)
				for _, l := range lines {
					line = append(append(line[:0], l...), '\n')
					if _, err := zw.Write(line); err != nil {
						b.Fatal(err)
					}
				}
				if err := zw.Close(); err != nil {
					b.Fatal(err)
				}
			}
			cpu := float64((cpuTime(b) - start).Nanoseconds()) / float64(b.N*users)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*users), "ns/user")
			b.ReportMetric(cpu, "cpu-ns/user")
			b.ReportMetric(float64(out)/users, "B/user")
			b.ReportMetric(float64(raw)/float64(out), "ratio")
			b.ReportMetric(cpu/listingNsPerUser, "x-listing")
		})
	}
}

type countingWriter int64

func (w *countingWriter) Write(p []byte) (int, error) {
	*w += countingWriter(len(p))
	return len(p), nil
}

// BenchmarkExport exports 100,000 users to Azurite in the exports' format
// through storage's BlobWriter, 1 MiB blocks, and reports the CPU this process spent per user (compression,
// staging, HTTP; Azurite's own is not counted), the wall time per user, the
// blob's B/user, and x-listing, the CPU as a share of the listing's.
//
//	go test -run '^$' -bench BenchmarkExport$ -benchtime 3x ./internal/usersjob
func BenchmarkExport(b *testing.B) {
	const users = 100_000
	lines, _ := benchLines(users)
	s := azurite.Start(b)
	conn, err := storage.ParseConnection("AzureWebJobsStorage", func(string) string { return s.ConnectionString() }, "")
	if err != nil {
		b.Fatal(err)
	}
	c, err := storage.Open(conn, "bench", &storage.Options{Transport: s.Client()})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Create(b.Context()); err != nil {
		b.Fatal(err)
	}
	var cpu time.Duration
	var size int64
	n := 0
	for b.Loop() {
		before := cpuTime(b)
		w, err := c.NewBlobWriter(b.Context(), fmt.Sprintf("users-%d", n)+jsonLinesGzip.ext, jsonLinesGzip.contentType)
		if err != nil {
			b.Fatal(err)
		}
		enc, err := jsonLinesGzip.newEncoder(w)
		if err != nil {
			b.Fatal(err)
		}
		for _, l := range lines {
			if err := enc.Encode(l); err != nil {
				b.Fatal(err)
			}
		}
		if err := enc.Close(); err != nil {
			b.Fatal(err)
		}
		done, err := w.Commit(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime(b) - before
		size = done.Bytes
		n++
	}
	perUser := float64(cpu.Nanoseconds()) / float64(n*users)
	b.ReportMetric(perUser, "cpu-ns/user")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*users), "ns/user")
	b.ReportMetric(float64(size)/users, "B/user")
	b.ReportMetric(perUser/listingNsPerUser, "x-listing")
}

// cpuTime is the CPU this process has used, user and system.
func cpuTime(b testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
