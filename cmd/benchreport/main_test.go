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
	assert.Empty(t, report(&out, res))

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
	missing := report(&out, res)
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
