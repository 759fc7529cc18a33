// Command benchreport reads the output of the project's benchmarks (go test
// -bench) on stdin, passes it through as it comes, and then prints the
// figures of the issues "Fast and flat", "A million users inside one
// timeout" and "Only what changed": each next to the baseline measured in the
// same run, its ratio to it, and whether its target is met. A figure
// measured in several runs (go test -count, or a sub-benchmark run again,
// name#01) is their median. It exits 1 when a figure of the parts it reports
// is missing from the input.
//
//	benchreport [-parts "fast streams delta export"]
//
// `make bench` runs the benchmarks of the parts BENCH names and pipes them
// here.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// allParts are the parts of the benchmarks, each run alone by
// `make bench BENCH=<part>`: the issue "Fast and flat" (fast), the parallel
// streams (streams), a delta round (delta) and the export (export).
var allParts = []string{"fast", "streams", "delta", "export"}

func main() {
	partsFlag := flag.String("parts", strings.Join(allParts, " "), "the `parts` whose figures to report, of "+strings.Join(allParts, ", "))
	flag.Parse()
	parts := strings.Fields(*partsFlag)
	for _, p := range parts {
		if !slices.Contains(allParts, p) {
			fmt.Fprintf(os.Stderr, "benchreport: no part %q; the parts are %s\n", p, strings.Join(allParts, ", "))
			os.Exit(2)
		}
	}
	res, err := parse(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
	fmt.Println()
	if missing := report(os.Stdout, res, parts); len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "benchreport: not in the input: %s\n", strings.Join(missing, ", "))
		os.Exit(1)
	}
}

// results holds what the benchmarks reported: the values of each unit, one
// per run (go test -count), by benchmark name without the "Benchmark" prefix
// and the -GOMAXPROCS suffix; and the machine the run describes.
type results struct {
	metrics map[string]map[string][]float64
	cpu     string
}

// median is the median of a unit's values, or false when there are none.
func (r results) median(name, unit string) (float64, bool) {
	vs := slices.Clone(r.metrics[name][unit])
	if len(vs) == 0 {
		return 0, false
	}
	slices.Sort(vs)
	if n := len(vs); n%2 == 0 {
		return (vs[n/2-1] + vs[n/2]) / 2, true
	}
	return vs[len(vs)/2], true
}

// parse reads benchmark output from r, copying each line to echo.
func parse(r io.Reader, echo io.Writer) (results, error) {
	res := results{metrics: map[string]map[string][]float64{}}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(echo, line)
		if cpu, ok := strings.CutPrefix(line, "cpu: "); ok {
			res.cpu = cpu
		}
		name, values, ok := parseResult(line)
		if !ok {
			continue
		}
		if res.metrics[name] == nil {
			res.metrics[name] = map[string][]float64{}
		}
		for unit, v := range values {
			res.metrics[name][unit] = append(res.metrics[name][unit], v)
		}
	}
	return res, sc.Err()
}

// parseResult reads a result line such as
// "BenchmarkListUsers/100k/job-2   3   608438499 ns/op   164355 users/s".
// A sub-benchmark run again under the same name, which go test calls
// name#01, name#02, is a run of name.
func parseResult(line string) (string, map[string]float64, bool) {
	fields := strings.Fields(line)
	if len(fields) < 4 || len(fields)%2 != 0 || !strings.HasPrefix(fields[0], "Benchmark") {
		return "", nil, false
	}
	if _, err := strconv.Atoi(fields[1]); err != nil {
		return "", nil, false
	}
	name := strings.TrimPrefix(fields[0], "Benchmark")
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			name = name[:i]
		}
	}
	if i := strings.LastIndexByte(name, '#'); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			name = name[:i]
		}
	}
	values := map[string]float64{}
	for k := 2; k < len(fields); k += 2 {
		v, err := strconv.ParseFloat(fields[k], 64)
		if err != nil {
			return "", nil, false
		}
		values[fields[k+1]] = v
	}
	return name, values, true
}

// figure is one line of the report: the job's value, the baseline's and the
// limit's where they apply (NaN where not), and the target, if any.
type figure struct {
	name                 string
	job, baseline, limit float64
	target               target
}

// target is a bound on the job's value, or on its ratio to the baseline or
// to the limit.
type target struct {
	text    string
	ofRatio bool    // the bound is on job ÷ baseline, not on the job's value
	ofLimit bool    // the bound is on job ÷ limit
	atMost  bool    // the value must not exceed bound; otherwise not fall below it
	bound   float64 // zero: no target
}

func (f figure) ratio() float64 { return f.job / f.baseline }

// judged is the value the target bounds.
func (f figure) judged() float64 {
	switch {
	case f.target.ofRatio:
		return f.ratio()
	case f.target.ofLimit:
		return f.job / f.limit
	}
	return f.job
}

// met reports whether the figure meets its target.
func (f figure) met() bool {
	if f.target.atMost {
		return f.judged() <= f.target.bound
	}
	return f.judged() >= f.target.bound
}

// section is a table of figures under a title. columns name the job's,
// the baseline's and the limit's columns and their ratio's; handler
// sections have the job's alone.
type section struct {
	title   string
	columns []string
	handler bool
	figures []figure
}

// report prints the figures of parts as a table and returns the metrics it
// did not find.
func report(w io.Writer, res results, parts []string) (missing []string) {
	get := func(name, unit string) float64 {
		if v, ok := res.median(name, unit); ok {
			return v
		}
		missing = append(missing, name+" "+unit)
		return math.NaN()
	}
	byPart := map[string]func(get func(name, unit string) float64) []section{
		"fast":    fastSections(res),
		"streams": streamsSections,
		"delta":   deltaSections,
		"export":  exportSections(res),
	}
	var sections []section
	for _, p := range allParts {
		if slices.Contains(parts, p) {
			sections = append(sections, byPart[p](get)...)
		}
	}

	fmt.Fprintf(w, "GraphUsersTimer benchmarks — %s, %d CPUs, %s %s/%s; ratios against the baseline measured in this run\n",
		res.cpu, runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	var rows [][]string
	for _, s := range sections {
		header := append([]string{""}, s.columns...)
		if s.columns == nil {
			header = []string{"", "job", "baseline", "limit", "job ÷ baseline"}
		}
		if s.handler {
			header = []string{"", "handler", "", "", ""}
		}
		header = append(header, "target", "")
		rows = append(rows, []string{s.title}, header)
		for _, f := range s.figures {
			verdict := ""
			switch {
			case f.target.bound == 0:
			case math.IsNaN(f.judged()):
				verdict = "not measured"
			case f.met():
				verdict = "met"
			default:
				verdict = "NOT MET"
			}
			row := []string{"  " + f.name, num(f.job), num(f.baseline), num(f.limit), ratio(f.ratio()), f.target.text, verdict}
			if s.handler {
				row[2], row[3], row[4] = "", "", ""
			}
			rows = append(rows, row)
		}
	}
	printTable(w, rows)
	return missing
}

// runs notes how many runs a figure is the median of, when more than one.
func runs(res results, name string) string {
	if n := len(res.metrics[name]["ns/op"]); n > 1 {
		return fmt.Sprintf("; median of %d runs", n)
	}
	return ""
}

// fastSections are the figures of the issue "Fast and flat": the listing
// in-process against a baseline client, its peak heap, the handler's
// start-up and size.
func fastSections(res results) func(get func(name, unit string) float64) []section {
	return func(get func(name, unit string) float64) []section {
		nan := math.NaN()
		list := func(side, unit string) float64 { return get("ListUsers/100k/"+side, unit) }
		triple := func(name, unit string, t target) figure {
			return figure{name, list("job", unit), list("baseline", unit), list("limit", unit), t}
		}
		cpuOverLimit := figure{name: "CPU ÷ the limit's", limit: 1}
		cpuOverLimit.job = list("job", "cpu-ns/user") / list("limit", "cpu-ns/user")
		cpuOverLimit.baseline = list("baseline", "cpu-ns/user") / list("limit", "cpu-ns/user")
		latency := func(side string) float64 { return get("ListUsersLatency/"+side, "ns/op") / 1e9 }
		peak := func(size, side string) float64 { return get("ListUsersPeakHeap/"+size+"/"+side, "peak-heap-MiB") }
		heap := func(size, name string) figure {
			return figure{name, peak(size, "job"), peak(size, "baseline"), peak(size, "limit"),
				target{text: "under 32 MiB", atMost: true, bound: 32}}
		}
		growth := figure{name: "1,000,000 ÷ 10,000 users",
			job:      peak("1M", "job") / peak("10k", "job"),
			baseline: peak("1M", "baseline") / peak("10k", "baseline"),
			limit:    peak("1M", "limit") / peak("10k", "limit"),
			target:   target{text: "≤ 1.5", atMost: true, bound: 1.5}}
		startup := func(name, unit string, t target) figure {
			return figure{name, get("Startup", unit), nan, nan, t}
		}
		return []section{
			{title: "Fast and flat — 100,000 users, default properties, $top 999, over TLS, no latency; a log line per user" +
				runs(res, "ListUsers/100k/job"), figures: []figure{
				triple("users/s", "users/s", target{text: "≥ 4× baseline", ofRatio: true, bound: 4}),
				triple("wall ns/user", "ns/user", target{}),
				triple("CPU ns/user (process, fake Graph included)", "cpu-ns/user", target{}),
				cpuOverLimit,
				triple("B allocated/user", "B/user", target{text: "≤ 1/10 baseline", ofRatio: true, atMost: true, bound: 0.1}),
				triple("allocs/user", "allocs/user", target{}),
			}},
			{title: "latency profile: 150 ms before the first byte, 4 MiB/s body, 20 pages of 999 users", figures: []figure{
				{"wall s/listing", latency("job"), latency("baseline"), nan,
					target{text: "≤ 0.65× baseline", ofRatio: true, atMost: true, bound: 0.65}},
			}},
			{title: "peak heap while listing, MiB (sampled every 1 ms after a GC)", figures: []figure{
				heap("10k", "10,000 users"),
				heap("1M", "1,000,000 users"),
				growth,
			}},
			{title: "start-up: exec to GET / answered, 30 starts; the deployed binary", handler: true, figures: []figure{
				startup("median ms", "median-ms", target{text: "≤ 10 ms", atMost: true, bound: 10}),
				startup("p90 ms", "p90-ms", target{}),
				startup("linux/amd64 stripped binary, MB", "binary-MB", target{text: "≤ 12 MB", atMost: true, bound: 12}),
			}},
		}
	}
}

// streamsSections are the figures of the issue "A million users inside one
// timeout": the handler process listing a million users with 32 and 64
// streams against one cursor, and a tenant of one page.
func streamsSections(get func(name, unit string) float64) []section {
	nan := math.NaN()
	run := func(streams, unit string) float64 { return get("Streams/1M/"+streams, unit) }
	one := func(unit string) float64 { return run("1-stream", unit) }
	var figures []figure
	for _, n := range []string{"32", "64"} {
		streams := n + "-streams"
		wall := figure{n + " streams: wall s", run(streams, "wall-s"), one("wall-s"), run(streams, "latency-floor-s"), target{}}
		cpu := figure{n + " streams: CPU ns/user", run(streams, "cpu-ns/user"), one("cpu-ns/user"), nan, target{}}
		rss := figure{n + " streams: peak RSS MiB", run(streams, "peak-rss-MiB"), one("peak-rss-MiB"), nan, target{}}
		if n == "32" {
			wall.target = target{text: "≥ 15× shorter", ofRatio: true, atMost: true, bound: 1.0 / 15}
			cpu.target = target{text: "≤ 1.2× one cursor", ofRatio: true, atMost: true, bound: 1.2}
			rss.target = target{text: "under 64 MiB", atMost: true, bound: 64}
		}
		streamsUsed := run(streams, "streams")
		figures = append(figures, wall, cpu, rss,
			figure{n + " streams: cores busy, handler and fakes", run(streams, "cores-busy"), one("cores-busy"), nan, target{}},
			figure{n + " streams: pages of the largest part", run(streams, "largest-part-pages"), one("pages"), nan, target{}},
			figure{n + " streams: requests ÷ streams", run(streams, "requests") / streamsUsed, one("requests"), nan, target{}},
		)
	}
	figures = append(figures, figure{"1-page tenant, 16 streams: Graph requests", get("Streams/1-page", "requests"), nan, nan,
		target{text: "exactly 1", atMost: true, bound: 1}})
	return []section{{
		title: "A million users inside one timeout — 1,000,000 realistic users, 200 ms to each page's first byte, bandwidth " +
			"unlimited (loopback); the handler process, one invocation each; floor: the round trips the run needs × 200 ms; " +
			"cores busy: the handler's CPU and the fakes' (with the reading of its output) over the wall time, of " + strconv.Itoa(runtime.NumCPU()),
		columns: []string{"streams", "one cursor", "floor", "÷ one cursor"},
		figures: figures,
	}}
}

// deltaSections are the figures of a delta round of the issue "Only what
// changed", against the full listing that gave it its state.
func deltaSections(get func(name, unit string) float64) []section {
	nan := math.NaN()
	d := func(unit string) float64 { return get("Delta/1M", unit) }
	return []section{{
		title: "Only what changed — a delta round over 1,000,000 users, 10,000 changed (8,000 updated, 500 soft-deleted, " +
			"500 hard-deleted, 1,000 added), 200 ms to each page's first byte, state in Azurite; the handler process; " +
			"beside it the full listing that gave it its state (delta mode's first run, logged as list mode), no latency; " +
			"floor: pages × 200 ms",
		columns: []string{"round", "full listing", "floor", "÷ full listing"},
		figures: []figure{
			{"wall s", d("wall-s"), nan, d("latency-floor-s"),
				target{text: "≤ 1.1× floor", ofLimit: true, atMost: true, bound: 1.1}},
			{"pages", d("pages"), d("full-pages"), nan, target{}},
			{"log lines", d("log-lines"), d("full-log-lines"), nan, target{}},
			{"log MB", d("log-MB"), d("full-log-MB"), nan, target{}},
			{"CPU s", d("cpu-s"), d("full-cpu-s"), nan, target{}},
			{"peak RSS MiB", d("peak-rss-MiB"), d("full-peak-rss-MiB"), nan, target{}},
		},
	}}
}

// exportSections are the export's figures of the issue "Only what
// changed", against the same listing without it.
func exportSections(res results) func(get func(name, unit string) float64) []section {
	return func(get func(name, unit string) float64) []section {
		nan := math.NaN()
		e := func(unit string) float64 { return get("Export/1M/export", unit) }
		l := func(unit string) float64 { return get("Export/1M/list", unit) }
		return []section{{
			title: "Only what changed — an export of 1,000,000 realistic users, list mode, 16 streams, no latency, gzip'd " +
				"to Azurite; the handler process, beside the same listing without the export" + runs(res, "Export/1M/export") +
				" each, interleaved",
			columns: []string{"export", "listing", "", "÷ listing"},
			figures: []figure{
				{"peak RSS MiB", e("peak-rss-MiB"), l("peak-rss-MiB"), nan, target{text: "under 64 MiB", atMost: true, bound: 64}},
				{"CPU ns/user, in all", e("cpu-ns/user"), l("cpu-ns/user"), nan,
					target{text: "≤ 1.5× listing", ofRatio: true, atMost: true, bound: 1.5}},
				{"CPU ns/user the export adds", e("cpu-ns/user") - l("cpu-ns/user"), l("cpu-ns/user"), nan,
					target{text: "≤ 1.5× listing", ofRatio: true, atMost: true, bound: 1.5}},
				{"wall s", e("wall-s"), l("wall-s"), nan, target{}},
				{"export MB", e("export-MB"), nan, nan, target{}},
			},
		}}
	}
}

// printTable prints rows in columns: the first and the last two left-aligned,
// the numbers between right-aligned. A row of one cell is a title, printed
// after a blank line and left out of the widths.
func printTable(w io.Writer, rows [][]string) {
	var width []int
	for _, r := range rows {
		if len(r) == 1 {
			continue
		}
		for len(width) < len(r) {
			width = append(width, 0)
		}
		for i, c := range r {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	for _, r := range rows {
		if len(r) == 1 {
			fmt.Fprintf(w, "\n%s\n", r[0])
			continue
		}
		var b strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i > 0 {
				b.WriteString("  ")
			}
			if i == 0 || i >= len(r)-2 {
				b.WriteString(c + pad)
			} else {
				b.WriteString(pad + c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

// num formats a figure with three significant digits or as a whole number;
// NaN, a figure that does not apply, as a dash.
func num(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "–"
	case a >= 1000:
		return groupThousands(strconv.FormatFloat(v, 'f', 0, 64))
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

func ratio(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return num(v) + "×"
}

// groupThousands puts commas in a whole number: 1234567 -> 1,234,567.
func groupThousands(s string) string {
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return sign + b.String()
}
