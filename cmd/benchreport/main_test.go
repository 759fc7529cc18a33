package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sample is the shape of `make bench` output, its figures made up.
const sample = `goos: linux
goarch: amd64
pkg: graphuserstimer/internal/graph
cpu: AMD EPYC
BenchmarkListUsers/100k/job-2          3   400000000 ns/op   40.0 B/user   0.2 allocs/user   4000 cpu-ns/user   4000 ns/user   250000 users/s   4000000 B/op   20000 allocs/op
BenchmarkListUsers/100k/job-2          3   500000000 ns/op   50.0 B/user   0.2 allocs/user   5000 cpu-ns/user   5000 ns/user   200000 users/s   5000000 B/op   20000 allocs/op
BenchmarkListUsers/100k/job-2          3   600000000 ns/op   60.0 B/user   0.2 allocs/user   6000 cpu-ns/user   6000 ns/user   166667 users/s   6000000 B/op   20000 allocs/op
BenchmarkListUsers/100k/baseline-2     3  2000000000 ns/op   5000 B/user    75 allocs/user  20000 cpu-ns/user  20000 ns/user    50000 users/s 500000000 B/op 7500000 allocs/op
BenchmarkListUsers/100k/limit-2        3   150000000 ns/op     30 B/user   0.17 allocs/user  1800 cpu-ns/user   1500 ns/user   666667 users/s   3000000 B/op   17000 allocs/op
BenchmarkListUsersLatency/job-2        3  4800000000 ns/op
BenchmarkListUsersLatency/baseline-2   3  5000000000 ns/op
BenchmarkListUsersPeakHeap/10k/job-2        1  50000000 ns/op   3.0 peak-heap-MiB
BenchmarkListUsersPeakHeap/10k/baseline-2   1  50000000 ns/op   4.0 peak-heap-MiB
BenchmarkListUsersPeakHeap/10k/limit-2      1  50000000 ns/op   3.5 peak-heap-MiB
BenchmarkListUsersPeakHeap/1M/job-2         1  50000000 ns/op   4.0 peak-heap-MiB
BenchmarkListUsersPeakHeap/1M/baseline-2    1  50000000 ns/op   8.0 peak-heap-MiB
BenchmarkListUsersPeakHeap/1M/limit-2       1  50000000 ns/op   3.5 peak-heap-MiB
PASS
ok  	graphuserstimer/internal/graph	60.0s
BenchmarkStartup-2   30   6500000 ns/op   8.2 binary-MB   5.4 median-ms   6.7 p90-ms
`

// sampleWhole is the shape of the whole-program benchmarks' output, its
// figures made up.
const sampleWhole = `pkg: graphuserstimer/cmd/handler
BenchmarkStreams/1M/1-stream-2     1  203000000000 ns/op  0.02 cores-busy  3000 cpu-ns/user  0 largest-part-pages  200.4 latency-floor-s  1002 pages  40.0 peak-rss-MiB  1002 requests  1002 round-trips  1.000 streams  1000000 users  203.0 wall-s
BenchmarkStreams/1M/32-streams-2   1  11000000000 ns/op  0.95 cores-busy  3300 cpu-ns/user  47.00 largest-part-pages  9.800 latency-floor-s  1495 pages  50.0 peak-rss-MiB  1496 requests  49.00 round-trips  32.00 streams  1000000 users  10.15 wall-s
BenchmarkStreams/1M/64-streams-2   1  8000000000 ns/op  1.90 cores-busy  3400 cpu-ns/user  33.00 largest-part-pages  7.000 latency-floor-s  1927 pages  70.0 peak-rss-MiB  1928 requests  35.00 round-trips  64.00 streams  1000000 users  7.300 wall-s
BenchmarkStreams/1-page-2          1  250000000 ns/op  1.000 requests  999.0 users  0.2175 wall-s
BenchmarkDelta/1M-2   1  16000000000 ns/op  10000 changes  0.1200 cpu-s  3.000 full-cpu-s  257.1 full-log-MB  1000117 full-log-lines  1002 full-pages  45.0 full-peak-rss-MiB  3.2 full-wall-s  10.00 latency-floor-s  1.761 log-MB  10002 log-lines  50.00 pages  20.0 peak-rss-MiB  50.00 requests  11.5 wall-s
BenchmarkExport/1M/list-2          1  4000000000 ns/op  2500 cpu-ns/user  45.0 peak-rss-MiB  3.0 wall-s
BenchmarkExport/1M/export-2        1  6000000000 ns/op  4400 cpu-ns/user  43.4 export-MB  60.0 peak-rss-MiB  5.0 wall-s
BenchmarkExport/1M/list#01-2       1  4000000000 ns/op  2600 cpu-ns/user  46.0 peak-rss-MiB  3.1 wall-s
BenchmarkExport/1M/export#01-2     1  6000000000 ns/op  4600 cpu-ns/user  43.4 export-MB  62.0 peak-rss-MiB  5.2 wall-s
BenchmarkExport/1M/list#02-2       1  4000000000 ns/op  2700 cpu-ns/user  47.0 peak-rss-MiB  3.2 wall-s
BenchmarkExport/1M/export#02-2     1  6000000000 ns/op  4800 cpu-ns/user  43.4 export-MB  66.0 peak-rss-MiB  5.4 wall-s
PASS
`

func TestParseReadsEveryResultAndPassesTheInputThrough(t *testing.T) {
	var echo bytes.Buffer
	res, err := parse(strings.NewReader(sample), &echo)
	require.NoError(t, err)
	assert.Equal(t, sample, echo.String())
	assert.Equal(t, "AMD EPYC", res.cpu)
	assert.Len(t, res.metrics, 12)
	assert.Equal(t, []float64{250000, 200000, 166667}, res.metrics["ListUsers/100k/job"]["users/s"])
	assert.Equal(t, []float64{5e9}, res.metrics["ListUsersLatency/baseline"]["ns/op"])
	assert.Equal(t, []float64{5.4}, res.metrics["Startup"]["median-ms"])
}

func TestParseResultSkipsLinesThatAreNotResults(t *testing.T) {
	for _, line := range []string{
		"goos: linux",
		"PASS",
		"BenchmarkListUsers/100k/job-2",
		"--- FAIL: BenchmarkListUsers/100k/job-2",
		"BenchmarkX-2   many   5 ns/op",
		"BenchmarkX-2   3   five ns/op",
	} {
		_, _, ok := parseResult(line)
		assert.False(t, ok, line)
	}
}

func TestParseResultKeepsADashInTheName(t *testing.T) {
	name, _, ok := parseResult("BenchmarkA/x-y-8   1   5 ns/op")
	require.True(t, ok)
	assert.Equal(t, "A/x-y", name)
	name, _, ok = parseResult("BenchmarkA/x-y   1   5 ns/op")
	require.True(t, ok)
	assert.Equal(t, "A/x-y", name)
}

func TestReportSaysWhichTargetsAreMet(t *testing.T) {
	res, err := parse(strings.NewReader(sample), &bytes.Buffer{})
	require.NoError(t, err)
	var out bytes.Buffer
	assert.Empty(t, report(&out, res, []string{"fast"}))

	for prefix, verdict := range map[string]string{
		"users/s 200,000 50,000":         "met", // 4×
		"B allocated/user":               "met",
		"wall s/listing":                 "NOT MET", // 0.96×
		"10,000 users 3.00":              "met",
		"1,000,000 ÷ 10,000":             "met", // 1.33
		"median ms 5.40":                 "met",
		"linux/amd64 stripped binary,":   "met",
		"1,000,000 users 4.00 8.00 3.50": "met",
	} {
		line := find(t, out.String(), prefix)
		assert.True(t, strings.HasSuffix(line, verdict), "%q should end %q", line, verdict)
		if verdict == "met" {
			assert.NotContains(t, line, "NOT MET")
		}
	}
	assert.Contains(t, find(t, out.String(), "users/s"), "4.00×", "the median of the job's three runs")
	assert.Contains(t, out.String(), "median of 3 runs")
}

func TestParseResultTakesARepeatedSubBenchmarkForARunOfIt(t *testing.T) {
	name, values, ok := parseResult("BenchmarkExport/1M/list#02-2   1   5 ns/op   2.5 wall-s")
	require.True(t, ok)
	assert.Equal(t, "Export/1M/list", name)
	assert.Equal(t, 2.5, values["wall-s"])
	name, _, ok = parseResult("BenchmarkA/b#x-2   1   5 ns/op")
	require.True(t, ok)
	assert.Equal(t, "A/b#x", name, "only a number after # numbers a run")
}

func TestReportJudgesTheWholeProgramFigures(t *testing.T) {
	res, err := parse(strings.NewReader(sampleWhole), &bytes.Buffer{})
	require.NoError(t, err)
	var out bytes.Buffer
	assert.Empty(t, report(&out, res, []string{"streams", "delta", "export"}))

	for prefix, verdict := range map[string]string{
		"32 streams: wall s 10.2 203 9.80 0.050×": "met", // 20× shorter
		"32 streams: CPU ns/user 3,300 3,000":     "met", // 1.1×
		"32 streams: peak RSS MiB 50.0":           "met",
		"1-page tenant, 16 streams: Graph":        "met",
		"wall s 11.5 – 10.0":                      "NOT MET", // 1.15× the floor
		// The medians of three runs each: 62 MiB, 4,600 and 2,600 ns/user.
		"peak RSS MiB 62.0 46.0":                               "met",
		"CPU ns/user, in all 4,600 2,600":                      "NOT MET", // 1.77×
		"CPU ns/user the export adds 2,000 2,600":              "met",     // 0.77×
		"32 streams: requests ÷ streams 46.8 1,002":            "",
		"64 streams: pages of the largest part 33.0":           "",
		"64 streams: cores busy, handler and fakes 1.90 0.020": "",
	} {
		line := find(t, out.String(), prefix)
		if verdict == "" {
			assert.False(t, strings.HasSuffix(line, "met") || strings.HasSuffix(line, "MET"), "%q has no target", line)
			continue
		}
		assert.True(t, strings.HasSuffix(line, verdict), "%q should end %q", line, verdict)
		if verdict == "met" {
			assert.NotContains(t, line, "NOT MET")
		}
	}
	assert.NotContains(t, find(t, out.String(), "64 streams: peak RSS MiB"), "MET", "64 streams have no memory target")
	assert.Contains(t, out.String(), "median of 3 runs each")
	assert.NotContains(t, out.String(), "Fast and flat", "a part not asked for is not reported")
}

func TestReportNamesWhatIsMissingOfThePartsAskedForAlone(t *testing.T) {
	res, err := parse(strings.NewReader(sampleWhole), &bytes.Buffer{})
	require.NoError(t, err)
	missing := report(&bytes.Buffer{}, res, []string{"delta"})
	assert.Empty(t, missing)
	missing = report(&bytes.Buffer{}, res, []string{"fast", "delta"})
	assert.Contains(t, missing, "Startup median-ms")
	assert.NotContains(t, missing, "Delta/1M wall-s")
}

func TestMedianOfAnEvenNumberOfRunsIsTheMeanOfTheMiddleTwo(t *testing.T) {
	res := results{metrics: map[string]map[string][]float64{"A": {"x": {4, 1, 3, 2}}}}
	m, ok := res.median("A", "x")
	require.True(t, ok)
	assert.Equal(t, 2.5, m)
	_, ok = res.median("A", "y")
	assert.False(t, ok)
}

func TestReportNamesWhatIsMissing(t *testing.T) {
	res, err := parse(strings.NewReader("BenchmarkStartup-2   30   6500000 ns/op   8.2 binary-MB\n"), &bytes.Buffer{})
	require.NoError(t, err)
	var out bytes.Buffer
	missing := report(&out, res, []string{"fast"})
	assert.Contains(t, missing, "Startup median-ms")
	assert.Contains(t, missing, "ListUsers/100k/job users/s")
	assert.Contains(t, find(t, out.String(), "median ms"), "not measured")
}

// find returns the report line whose words, spaces collapsed, start with
// prefix.
func find(t *testing.T, report, prefix string) string {
	t.Helper()
	for _, l := range strings.Split(report, "\n") {
		if strings.HasPrefix(strings.Join(strings.Fields(l), " "), prefix) {
			return l
		}
	}
	t.Fatalf("no line starts %q in\n%s", prefix, report)
	return ""
}
