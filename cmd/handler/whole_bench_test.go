//go:build linux

package main

// The whole program, measured as the Functions host runs it: the built
// handler is a process of its own, started with its app settings, invoked
// once per configuration by a fake host, its stdout read by this process
// (every user counted, each id once), its peak RSS read from the kernel once
// the invocation is answered and its CPU when it exits, so that they are the
// handler's alone. The fake
// identity endpoint and the fake Graph run in this process, Azurite in its
// own. `make bench` runs these with the figures of the issues
// "A million users inside one timeout" (BenchmarkStreams) and "Only what
// changed" (BenchmarkDelta, BenchmarkExport); cmd/benchreport sets each
// figure against the run it is a ratio of.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"graphuserstimer/internal/azurite"
	"graphuserstimer/internal/fakeazure"
)

// The tenant the issues name: a million users, named as a real directory
// names them, behind a Graph that takes 200 ms to its first byte of every
// page and sends the body as fast as loopback carries it.
const (
	millionUsers = 1_000_000
	graphLatency = 200 * time.Millisecond
)

// BenchmarkStreams lists a million users with one cursor, 32 and 64
// streams, each once, from a Graph 200 ms away; and a tenant that fits on
// one page at the default 16 streams, which must cost one request. Every
// listing must log every user exactly once.
func BenchmarkStreams(b *testing.B) {
	bin := buildBenchHandler(b)
	b.Run("1M", func(b *testing.B) {
		az := newBenchAzure(b, fakeazure.GraphOptions{Users: millionUsers, Realistic: true})
		az.latency.Store(int64(graphLatency))
		az.warmUp(b)
		for _, streams := range []int{1, 32, 64} {
			name := fmt.Sprintf("%d-streams", streams)
			if streams == 1 {
				name = "1-stream"
			}
			b.Run(name, func(b *testing.B) {
				for b.Loop() {
					env := az.settings(b)
					env["GRAPH_USERS_PARALLEL"] = strconv.Itoa(streams)
					res := invokeProcess(b, bin, env, az)
					res.mustListExactly(b, az.graph.ListedUsers())
					res.reportListing(b, graphLatency)
				}
			})
		}
	})
	b.Run("1-page", func(b *testing.B) {
		const users = 999 // the default $top: one full page
		az := newBenchAzure(b, fakeazure.GraphOptions{Users: users, Realistic: true})
		az.latency.Store(int64(graphLatency))
		for b.Loop() {
			env := az.settings(b)
			delete(env, "GRAPH_USERS_PARALLEL") // the default, 16
			res := invokeProcess(b, bin, env, az)
			res.mustListExactly(b, az.graph.ListedUsers())
			if got := res.summaryInt(b, "streams"); got != 1 {
				b.Fatalf("a tenant of one page listed by %d streams, want 1", got)
			}
			b.ReportMetric(float64(res.requests), "requests")
			b.ReportMetric(float64(res.summaryInt(b, "users")), "users")
			b.ReportMetric(res.wall.Seconds(), "wall-s")
		}
	})
}

// BenchmarkDelta measures an hourly delta round over a million users after
// 1 % of them changed, from a Graph 200 ms away, with its state in Azurite.
// The full listing that gives it its state runs first, with no latency to
// keep it short: delta mode's first run lists and logs every user as list
// mode does, and the round's log lines are set against its.
func BenchmarkDelta(b *testing.B) {
	bin := buildBenchHandler(b)
	b.Run("1M", func(b *testing.B) {
		for b.Loop() {
			store := azurite.Start(b)
			az := newBenchAzure(b, fakeazure.GraphOptions{Users: millionUsers, Realistic: true})
			az.warmUp(b)
			settings := func() map[string]string {
				env := az.settings(b)
				delete(env, "GRAPH_USERS_PARALLEL") // the default, 16
				env["GRAPH_USERS_MODE"] = "delta"
				// An update changes a user's jobTitle, which delta reports
				// only when it is selected.
				env["GRAPH_USERS_SELECT"] = "id,displayName,userPrincipalName,mail,jobTitle"
				env["AzureWebJobsStorage"] = store.ConnectionString()
				return env
			}

			full := invokeProcess(b, bin, settings(), az)
			full.mustListExactly(b, az.graph.ListedUsers())
			if mode := full.summary["mode"]; mode != "full" {
				b.Fatalf("the first delta run's summary says mode %v, want full", mode)
			}
			// 1 % of the tenant: mostly updates, some deleted, some new
			// users, added last so that no other change picks them.
			changed := az.graph.Change(fakeazure.Changes{Update: 8_000, SoftDelete: 500, HardDelete: 500})
			changed.Added = az.graph.Change(fakeazure.Changes{Add: 1_000}).Added
			az.latency.Store(int64(graphLatency))

			round := invokeProcess(b, bin, settings(), az)
			want := slices.Concat(changed.Updated, changed.SoftDeleted, changed.HardDeleted, changed.Added)
			round.mustChangeExactly(b, want)
			pages := round.summaryInt(b, "pages")
			b.ReportMetric(round.wall.Seconds(), "wall-s")
			b.ReportMetric(float64(pages), "pages")
			b.ReportMetric(float64(pages)*graphLatency.Seconds(), "latency-floor-s")
			b.ReportMetric(float64(len(want)), "changes")
			b.ReportMetric(float64(round.requests), "requests")
			b.ReportMetric(round.cpu.Seconds(), "cpu-s")
			b.ReportMetric(round.peakRSS, "peak-rss-MiB")
			b.ReportMetric(float64(round.lines), "log-lines")
			b.ReportMetric(float64(round.bytes)/1e6, "log-MB")
			b.ReportMetric(full.wall.Seconds(), "full-wall-s")
			b.ReportMetric(float64(full.summaryInt(b, "pages")), "full-pages")
			b.ReportMetric(full.cpu.Seconds(), "full-cpu-s")
			b.ReportMetric(full.peakRSS, "full-peak-rss-MiB")
			b.ReportMetric(float64(full.lines), "full-log-lines")
			b.ReportMetric(float64(full.bytes)/1e6, "full-log-MB")
		}
	})
}

// exportRounds is how many times BenchmarkExport lists with and without
// the export, one after the other, so that the machine's other load falls
// on both alike: cmd/benchreport takes the median of each.
const exportRounds = 3

// BenchmarkExport lists a million users in list mode, with no latency and
// at the default 16 streams, without an export and then with one to
// Azurite, exportRounds times: the export's peak RSS, and its CPU against
// the listing's alone. Repeated runs are named list#01, export#01, and so on.
func BenchmarkExport(b *testing.B) {
	bin := buildBenchHandler(b)
	store := azurite.Start(b)
	az := newBenchAzure(b, fakeazure.GraphOptions{Users: millionUsers, Realistic: true})
	az.warmUp(b)
	for range exportRounds {
		for _, export := range []bool{false, true} {
			name := "list"
			if export {
				name = "export"
			}
			b.Run("1M/"+name, func(b *testing.B) {
				for b.Loop() {
					env := az.settings(b)
					delete(env, "GRAPH_USERS_PARALLEL") // the default, 16
					env["GRAPH_USERS_EXPORT"] = strconv.FormatBool(export)
					env["AzureWebJobsStorage"] = store.ConnectionString()
					res := invokeProcess(b, bin, env, az)
					res.mustListExactly(b, az.graph.ListedUsers())
					if export {
						b.ReportMetric(float64(res.summaryInt(b, "export_bytes"))/1e6, "export-MB")
					}
					b.ReportMetric(res.wall.Seconds(), "wall-s")
					b.ReportMetric(float64(res.cpu.Nanoseconds())/float64(millionUsers), "cpu-ns/user")
					b.ReportMetric(res.peakRSS, "peak-rss-MiB")
				}
			})
		}
	}
}

// cpuProfileDirEnv, when set to a folder, has every handler process of these
// benchmarks write its CPU profile there, named by its benchmark: see
// README, "Performance". cpuProfileEnv passes the profile's file to
// TestHandlerProcess.
const (
	cpuProfileDirEnv = "BENCH_CPUPROFILE"
	cpuProfileEnv    = "GRAPHUSERSTIMER_TEST_CPUPROFILE"
)

// TestMain runs the tests, or, when the benchmarks start this test binary
// with cpuProfileEnv set to ask for the handler's own CPU profile, the
// handler itself, profiled: it serves as main does until SIGTERM, then
// writes the profile and exits, so that the benchmark reads only the
// handler's lines.
func TestMain(m *testing.M) {
	out := os.Getenv(cpuProfileEnv)
	if out == "" {
		os.Exit(m.Run())
	}
	f, err := os.Create(out)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, os.Args[:1], os.Getenv, os.Stdout, os.Stderr)
	stop()
	pprof.StopCPUProfile()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// buildBenchHandler builds the handler as it is deployed, for this machine.
func buildBenchHandler(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "handler")
	buildHandler(b, bin, runtime.GOOS, runtime.GOARCH)
	return bin
}

// benchAzure is the fake identity endpoint and the fake Graph, served from
// this process over plain http on loopback, as a local run has them.
type benchAzure struct {
	clientID, header, token string
	graph                   *fakeazure.Graph
	identityURL, graphURL   string
	// latency is the wait before the first byte of every Graph response,
	// which a benchmark may change between runs.
	latency atomic.Int64
	// prefixes counts the /v1.0/users requests of each startsWith prefix,
	// "" for those without one.
	mu       sync.Mutex
	prefixes map[string]int
}

func newBenchAzure(b *testing.B, o fakeazure.GraphOptions) *benchAzure {
	b.Helper()
	az := &benchAzure{prefixes: map[string]int{}}
	o.Fault = func(pr fakeazure.PageRequest) fakeazure.Fault {
		if pr.Path == fakeazure.UsersPath {
			az.mu.Lock()
			az.prefixes[pr.Prefix]++
			az.mu.Unlock()
		}
		// A Fault's Delay replaces the Graph's latency: this one can change.
		return fakeazure.Fault{Delay: time.Duration(az.latency.Load())}
	}
	tn := fakeazure.NewTenant(b, fakeazure.TenantOptions{Graph: o, AppService: true})
	az.clientID, az.header, az.token, az.graph = tn.ClientID, tn.Header, tn.Token, tn.Graph
	az.identityURL, az.graphURL = tn.IdentityEndpoint, tn.URL.String()
	return az
}

// warmUp has the fake Graph build its index of UPN prefixes, which it builds
// on the first request with a startsWith filter: a cost of the fake, which
// no run should wait for.
func (az *benchAzure) warmUp(b *testing.B) {
	b.Helper()
	latency := az.latency.Swap(0)
	defer az.latency.Store(latency)
	q := url.Values{"$filter": {"startsWith(userPrincipalName,'a')"}, "$top": {"1"}}
	req, err := http.NewRequest(http.MethodGet, az.graphURL+fakeazure.UsersPath+"?"+q.Encode(), nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+az.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("warm-up request: %s", resp.Status)
	}
	az.countPrefixes()
}

// countPrefixes returns the requests of each prefix since the last call.
func (az *benchAzure) countPrefixes() map[string]int {
	az.mu.Lock()
	defer az.mu.Unlock()
	p := az.prefixes
	az.prefixes = map[string]int{}
	return p
}

// settings are the app settings the host would pass for these fakes, with
// one cursor.
func (az *benchAzure) settings(b *testing.B) map[string]string {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		b.Fatal(err)
	}
	return map[string]string{
		"FUNCTIONS_CUSTOMHANDLER_PORT": freePort(b),
		"FUNCTIONS_APP_ROOT_PATH":      root,
		"AZURE_CLIENT_ID":              az.clientID,
		"IDENTITY_ENDPOINT":            az.identityURL,
		"IDENTITY_HEADER":              az.header,
		"GRAPH_ENDPOINT":               az.graphURL,
		"GRAPH_USERS_SCHEDULE":         "0 0 * * * *",
		"GRAPH_USERS_PARALLEL":         "1",
	}
}

// runResult is what one invocation of the handler process did.
type runResult struct {
	// wall is the time from the POST to the answer.
	wall time.Duration
	// cpu is the handler process's user and system time, start to exit.
	cpu time.Duration
	// fakesCPU is this process's while the run lasted: the fakes serving
	// it and the reading of its output, which share the machine with it.
	fakesCPU time.Duration
	// peakRSS is the process's peak resident set, MiB.
	peakRSS float64
	// lines and bytes are what the handler logged on stdout and stderr,
	// less its start and stop lines.
	lines, bytes int
	// users are the ids of the "user" lines, changes those of "user
	// changed" and "user removed", in order, repeats included.
	users, changes [][16]byte
	// summary is the run's "users listed" or "changes listed" line.
	summary map[string]any
	// requests is how many requests of the user endpoints the fake Graph
	// served; prefixes, how many of /v1.0/users for each prefix.
	requests int
	prefixes map[string]int
}

// invokeProcess starts the handler with env, invokes it once as the host does,
// stops it with SIGTERM and returns what it did.
func invokeProcess(b *testing.B, bin string, env map[string]string, az *benchAzure) runResult {
	b.Helper()
	cmd := exec.Command(bin)
	if dir := os.Getenv(cpuProfileDirEnv); dir != "" {
		// The handler's own CPU profile: this test binary runs the same
		// code as the handler, profiled (see TestMain).
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		name := strings.NewReplacer("/", "_", "#", "_").Replace(b.Name())
		cmd = exec.Command(os.Args[0])
		cmd.Env = []string{cpuProfileEnv + "=" + filepath.Join(dir, name+".cpu.prof")}
	}
	cmd.Dir = env["FUNCTIONS_APP_ROOT_PATH"]
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	body, err := os.ReadFile(filepath.Join(cmd.Dir, "testdata", "invocations", "timer.json"))
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	outs := make(chan logRead, 2)
	var errText bytes.Buffer
	go func() { outs <- readLog(stdout, nil) }()
	go func() { outs <- readLog(stderr, &errText) }()
	finish := func() (logRead, logRead) {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		o1, o2 := <-outs, <-outs
		_ = cmd.Wait()
		return o1, o2
	}

	host := fakeazure.Host{URL: "http://127.0.0.1:" + env["FUNCTIONS_CUSTOMHANDLER_PORT"]}
	if err := host.WaitReady(context.Background()); err != nil {
		finish()
		b.Fatalf("%v\nstderr: %s", err, errText.String())
	}
	az.countPrefixes()
	requests := az.graph.Requests()
	own := selfCPU(b)
	start := time.Now()
	inv, err := host.Invoke(context.Background(), "GraphUsersTimer", body)
	wall := time.Since(start)
	own = selfCPU(b) - own
	requests = az.graph.Requests() - requests
	prefixes := az.countPrefixes()
	peak, peakErr := peakRSS(cmd.Process.Pid)
	o1, o2 := finish()
	if err != nil || inv.Status != http.StatusOK {
		b.Fatalf("invocation: %v, status %d, body %s\nstderr: %s", err, inv.Status, inv.Body, errText.String())
	}
	if peakErr != nil {
		b.Fatalf("the handler's peak RSS: %v", peakErr)
	}
	if o1.err != nil || o2.err != nil {
		b.Fatalf("read the handler's output: %v", errors.Join(o1.err, o2.err))
	}
	if o2.summary != nil {
		o1, o2 = o2, o1
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		b.Fatal("no resource usage for the handler process")
	}
	return runResult{
		wall:     wall,
		fakesCPU: own,
		cpu:      time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		peakRSS:  peak,
		lines:    o1.lines + o2.lines,
		bytes:    o1.bytes + o2.bytes,
		users:    slices.Concat(o1.users, o2.users),
		changes:  slices.Concat(o1.changes, o2.changes),
		summary:  o1.summary,
		requests: requests,
		prefixes: prefixes,
	}
}

// selfCPU is the CPU time this process has used, user and system.
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS reads the peak resident set of process pid, in MiB: VmHWM, the
// high-water mark of its own memory since it was exec'd. The rusage of a
// child that has exited says less: Linux folds the memory of the process
// that forked it into ru_maxrss at exec (golang/go#32054), so Maxrss would
// be this benchmark's own peak, with its million-user fake Graph, whenever
// that is larger.
func peakRSS(pid int) (float64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(status) {
		if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			kib, err := strconv.Atoi(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(v), []byte("kB")))))
			if err != nil {
				return 0, fmt.Errorf("VmHWM %q: %w", v, err)
			}
			return float64(kib) / 1024, nil
		}
	}
	return 0, errors.New("no VmHWM in /proc/<pid>/status")
}

// logRead is what one of the handler's streams held.
type logRead struct {
	lines, bytes   int
	users, changes [][16]byte
	summary        map[string]any
	err            error
}

// readLog reads a stream of the handler's JSON lines to its end: it counts
// them, less the handler's start and stop lines, notes the id of every user
// and change line, and decodes the run's summary. It copies what it reads
// to text, when not nil, for messages.
func readLog(r io.Reader, text *bytes.Buffer) logRead {
	var out logRead
	br := bufio.NewReaderSize(r, 1<<20)
	var long []byte
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, line...)
			continue
		}
		if long != nil {
			line = append(long, line...)
			long = nil
		}
		if len(line) > 0 {
			if text != nil && text.Len() < 1<<20 {
				text.Write(line)
			}
			if e := out.add(line); e != nil && out.err == nil {
				out.err = e
			}
		}
		if err == io.EOF {
			return out
		}
		if err != nil {
			out.err = err
			return out
		}
	}
}

var (
	msgKey = []byte(`"msg":"`)
	idKey  = []byte(`"id":"`)
)

// add takes one line into the counts.
func (o *logRead) add(line []byte) error {
	i := bytes.Index(line, msgKey)
	if i < 0 {
		return fmt.Errorf("a line without msg: %.200s", line)
	}
	msg := line[i+len(msgKey):]
	msg = msg[:bytes.IndexByte(msg, '"')]
	switch string(msg) {
	case "handler ready", "handler stopped":
		return nil
	case "user", "user changed", "user removed":
		// The id is a key of the user's own object: no string value holds
		// an unescaped quote before it.
		j := bytes.LastIndex(line, idKey)
		if j < 0 || len(line) < j+len(idKey)+36 {
			return fmt.Errorf("a %s line without an id: %.200s", msg, line)
		}
		id, err := parseGUID(line[j+len(idKey) : j+len(idKey)+36])
		if err != nil {
			return err
		}
		if string(msg) == "user" {
			o.users = append(o.users, id)
		} else {
			o.changes = append(o.changes, id)
		}
	case "users listed", "changes listed":
		if err := json.Unmarshal(line, &o.summary); err != nil {
			return fmt.Errorf("summary line: %w", err)
		}
	}
	o.lines++
	o.bytes += len(line)
	return nil
}

// parseGUID reads a GUID in its 8-4-4-4-12 hexadecimal form.
func parseGUID(s []byte) ([16]byte, error) {
	var id [16]byte
	var digits [32]byte
	n := 0
	for _, c := range s {
		if c == '-' {
			continue
		}
		if n == len(digits) {
			return id, fmt.Errorf("not a GUID: %q", s)
		}
		digits[n] = c
		n++
	}
	if n != len(digits) {
		return id, fmt.Errorf("not a GUID: %q", s)
	}
	if _, err := hex.Decode(id[:], digits[:]); err != nil {
		return id, fmt.Errorf("not a GUID: %q", s)
	}
	return id, nil
}

// idsOf returns the ids of the fake's users by index.
func idsOf(b *testing.B, users []int) [][16]byte {
	b.Helper()
	ids := make([][16]byte, len(users))
	for k, i := range users {
		id, err := parseGUID([]byte(fakeazure.UserID(i)))
		if err != nil {
			b.Fatal(err)
		}
		ids[k] = id
	}
	return ids
}

// sameSet fails b unless got holds each id of want exactly once and nothing
// else; what names the lines.
func sameSet(b *testing.B, what string, got, want [][16]byte) {
	b.Helper()
	cmpID := func(x, y [16]byte) int { return bytes.Compare(x[:], y[:]) }
	got, want = slices.Clone(got), slices.Clone(want)
	slices.SortFunc(got, cmpID)
	slices.SortFunc(want, cmpID)
	repeats := len(got) - len(slices.Compact(slices.Clone(got)))
	if repeats > 0 || !slices.Equal(got, want) {
		missing, extra := 0, 0
		for i, j := 0, 0; i < len(got) || j < len(want); {
			switch {
			case j == len(want) || i < len(got) && cmpID(got[i], want[j]) < 0:
				extra++
				i++
			case i == len(got) || cmpID(got[i], want[j]) > 0:
				missing++
				j++
			default:
				i++
				j++
			}
		}
		b.Fatalf("%d %s lines for %d users: %d repeated, %d missing, %d not expected",
			len(got), what, len(want), repeats, missing, extra)
	}
}

// mustListExactly fails b unless the run logged each of the users once.
func (r runResult) mustListExactly(b *testing.B, users []int) {
	b.Helper()
	sameSet(b, "user", r.users, idsOf(b, users))
	if n := r.summaryInt(b, "users"); n != len(users) {
		b.Fatalf("the summary says %d users, want %d", n, len(users))
	}
}

// mustChangeExactly fails b unless the round logged each changed user once.
func (r runResult) mustChangeExactly(b *testing.B, users []int) {
	b.Helper()
	sameSet(b, "change", r.changes, idsOf(b, users))
}

// summaryInt is a whole number from the run's summary line.
func (r runResult) summaryInt(b *testing.B, key string) int {
	b.Helper()
	v, ok := r.summary[key].(float64)
	if !ok {
		b.Fatalf("the summary line has no number %q: %v", key, r.summary)
	}
	return int(v)
}

// reportListing reports a listing's figures: its wall time, CPU and peak
// RSS, what bounded it (its largest part, in pages, and its requests over
// its streams), and the floor those set at latency a round trip.
func (r runResult) reportListing(b *testing.B, latency time.Duration) {
	users := r.summaryInt(b, "users")
	streams := r.summaryInt(b, "streams")
	largest := 0
	for p, n := range r.prefixes {
		if p != "" {
			largest = max(largest, n)
		}
	}
	// The first page, then, with streams, Graph's count and the case probe
	// side by side: two round trips before the parts.
	trips := r.summaryInt(b, "pages")
	if streams > 1 {
		// The first page, then Graph's count and the case probe side by
		// side, then the parts: as many round trips as the largest has
		// pages, or as their requests over the streams, whichever is more.
		parts := r.requests - 3
		trips = 2 + max(largest, (parts+streams-1)/streams)
	}
	b.ReportMetric(r.wall.Seconds(), "wall-s")
	b.ReportMetric(float64(r.cpu.Nanoseconds())/float64(users), "cpu-ns/user")
	// How many cores the handler and the fakes kept busy: near the
	// machine's count, the run waited on CPU rather than on Graph.
	b.ReportMetric((r.cpu+r.fakesCPU).Seconds()/r.wall.Seconds(), "cores-busy")
	b.ReportMetric(r.peakRSS, "peak-rss-MiB")
	b.ReportMetric(float64(users), "users")
	b.ReportMetric(float64(r.summaryInt(b, "pages")), "pages")
	b.ReportMetric(float64(r.requests), "requests")
	b.ReportMetric(float64(streams), "streams")
	b.ReportMetric(float64(largest), "largest-part-pages")
	b.ReportMetric(float64(trips), "round-trips")
	b.ReportMetric(float64(trips)*latency.Seconds(), "latency-floor-s")
}
