//go:build linux || darwin

package graph_test

// The benchmarks of the issue "Fast and flat". Each one measures the job's
// listing and a baseline client in the same run, against the in-process fake
// Graph over TLS; `make bench` runs them and cmd/benchreport prints each
// figure with its ratio to the baseline.
//
//   - the job: Client.ListUsers, every user written as a log line by
//     joblog's ObjectWriter to a discarding writer, flushed per page, as
//     usersjob does;
//   - the baseline: what a plain Go client does on an azcore pipeline with
//     its default policies: each page downloaded whole, unmarshalled into
//     maps, each user marshalled again into its log line;
//   - the limit: every page fetched over the baseline's pipeline and thrown
//     away undecoded, the floor any client pays for HTTP, TLS and the fake.
//
// The fake renders its pages in this process, into pooled buffers: its CPU
// and allocations are in every figure, on both sides alike, and the limit
// shows how much of them is the fake's and the transport's.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"runtime/metrics"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	azruntime "github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"graphuserstimer/internal/fakeazure"
	"graphuserstimer/internal/graph"
	"graphuserstimer/internal/joblog"
)

// benchPageSize is the job's default $top, the largest Graph allows.
const benchPageSize = 999

// BenchmarkListUsers lists 100,000 users with every default property, 36 MB
// of JSON in 101 pages of about 360 KB, with no latency: the job, the
// baseline and the limit.
func BenchmarkListUsers(b *testing.B) {
	const users = 100_000
	tn := newBenchTenant(b, users, nil)
	b.Run("100k", func(b *testing.B) {
		for _, l := range tn.contenders() {
			b.Run(l.name, func(b *testing.B) { measureListing(b, users, l.list) })
		}
	})
}

// BenchmarkListUsersLatency lists 20 pages of 999 users from a Graph that
// waits 150 ms before each response's first byte and sends its body at
// 4 MiB/s. A client that reads one page at a time waits out every delay; one
// that asks for the next page while it reads the current one hides them.
func BenchmarkListUsersLatency(b *testing.B) {
	const users = 20 * benchPageSize
	tn := newBenchTenant(b, users, func(fakeazure.PageRequest) fakeazure.Fault {
		return fakeazure.Fault{Delay: 150 * time.Millisecond, BytesPerSecond: 4 << 20}
	})
	for _, l := range tn.contenders()[:2] {
		b.Run(l.name, func(b *testing.B) { measureListing(b, users, l.list) })
	}
}

// BenchmarkListUsersPeakHeap reports the highest heap seen while listing
// 10,000 and 1,000,000 users: a listing that streams stays flat however large
// the tenant. The limit's peak is the fake Graph's and the transport's share.
func BenchmarkListUsersPeakHeap(b *testing.B) {
	for _, size := range []struct {
		name  string
		users int
	}{{"10k", 10_000}, {"1M", 1_000_000}} {
		b.Run(size.name, func(b *testing.B) {
			tn := newBenchTenant(b, size.users, nil)
			for _, l := range tn.contenders() {
				b.Run(l.name, func(b *testing.B) {
					var peak uint64
					for b.Loop() {
						var n int
						p, err := peakHeapDuring(func() (err error) {
							n, err = l.list(b.Context())
							return err
						})
						if err != nil {
							b.Fatal(err)
						}
						if n != size.users {
							b.Fatalf("listed %d users, want %d", n, size.users)
						}
						peak = max(peak, p)
					}
					b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
				})
			}
		})
	}
}

// benchTenant is a fake Graph over TLS and a fake IMDS, with the job's
// client and the baseline's pipeline on one managed identity credential.
type benchTenant struct {
	users    int
	first    string // the first page's URL
	client   *graph.Client
	query    graph.Query
	out      *joblog.Output
	pipeline azruntime.Pipeline
}

func newBenchTenant(b *testing.B, users int, fault func(fakeazure.PageRequest) fakeazure.Fault) *benchTenant {
	b.Helper()
	tn := fakeazure.NewTenant(b, fakeazure.TenantOptions{Graph: fakeazure.GraphOptions{Users: users, Fault: fault}})
	cred, endpoint := tn.Credential(b), tn.URL
	// One token for every listing: got here, before any timing, and cached
	// by MSAL for both clients.
	scope := graph.Scope(endpoint)
	if _, err := cred.GetToken(b.Context(), policy.TokenRequestOptions{Scopes: []string{scope}}); err != nil {
		b.Fatal(err)
	}
	client, err := graph.NewClient(endpoint, cred, &graph.ClientOptions{Transport: tn.Transport()})
	if err != nil {
		b.Fatal(err)
	}
	return &benchTenant{
		users: users,
		first: fmt.Sprintf("%s/v1.0/users?$select=%s&$top=%d",
			endpoint, url.QueryEscape(strings.Join(fakeazure.DefaultProperties, ",")), benchPageSize),
		client: client,
		query:  graph.Query{Select: fakeazure.DefaultProperties, PageSize: benchPageSize},
		out:    joblog.New(io.Discard, io.Discard, slog.LevelInfo),
		pipeline: azruntime.NewPipeline("baseline", "v0.0.0", azruntime.PipelineOptions{
			PerRetry: []policy.Policy{azruntime.NewBearerTokenPolicy(cred, []string{scope}, nil)},
		}, &policy.ClientOptions{Transport: tn.Transport()}),
	}
}

// contender is one way to list a tenant; it returns how many users it listed.
type contender struct {
	name string
	list func(context.Context) (int, error)
}

// contenders are the job, the baseline and the limit, in that order.
func (tn *benchTenant) contenders() []contender {
	return []contender{
		{"job", tn.listJob},
		{"baseline", tn.listBaseline},
		{"limit", tn.listLimit},
	}
}

// listJob lists as usersjob does with GRAPH_USERS_LOG_EACH on: one log line
// per user, the lines flushed after each page and at the end.
func (tn *benchTenant) listJob(ctx context.Context) (int, error) {
	users := tn.out.Objects("user")
	st, err := tn.client.ListUsers(ctx, tn.query, graph.Sink{
		User: func(_ int, u []byte) error { return users.Write(u) },
		Page: func(int, graph.Stats) { _ = users.Flush() },
	})
	if err != nil {
		return st.Users, err
	}
	return st.Users, users.Flush()
}

// listBaseline lists as a plain Go client on azcore's default pipeline does:
// each page downloaded whole, unmarshalled into maps, each user marshalled
// again into a log line of the job's shape, one write per line.
func (tn *benchTenant) listBaseline(ctx context.Context) (int, error) {
	n := 0
	var line []byte
	for next := tn.first; next != ""; {
		resp, err := tn.get(ctx, next, false)
		if err != nil {
			return n, err
		}
		body, err := azruntime.Payload(resp)
		if err != nil {
			return n, err
		}
		var page struct {
			NextLink string           `json:"@odata.nextLink"`
			Value    []map[string]any `json:"value"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return n, err
		}
		for _, u := range page.Value {
			obj, err := json.Marshal(u)
			if err != nil {
				return n, err
			}
			line = append(line[:0], `{"time":"`...)
			line = time.Now().AppendFormat(line, time.RFC3339Nano)
			line = append(line, `","level":"info","msg":"user",`...)
			line = append(line, obj[1:]...)
			line = append(line, '\n')
			if _, err := io.Discard.Write(line); err != nil {
				return n, err
			}
			n++
		}
		next = page.NextLink
	}
	return n, nil
}

// listLimit fetches every page over the baseline's pipeline and throws its
// bytes away, reading only the nextLink from the page's head, where Graph
// writes it. It decodes no user: it checks the number of pages and reports
// the tenant's size.
func (tn *benchTenant) listLimit(ctx context.Context) (int, error) {
	const linkKey = `"@odata.nextLink":"`
	head := make([]byte, 4<<10)
	pages := 0
	for next := tn.first; next != ""; pages++ {
		resp, err := tn.get(ctx, next, true)
		if err != nil {
			return 0, err
		}
		n, err := io.ReadFull(resp.Body, head)
		if err == nil || errors.Is(err, io.ErrUnexpectedEOF) {
			_, err = io.Copy(io.Discard, resp.Body)
		}
		resp.Body.Close()
		if err != nil {
			return 0, err
		}
		next = ""
		if i := bytes.Index(head[:n], []byte(linkKey)); i >= 0 {
			link := head[i+len(linkKey) : n]
			next = string(link[:bytes.IndexByte(link, '"')])
		}
	}
	if want := max(1, (tn.users+benchPageSize-1)/benchPageSize); pages != want {
		return 0, fmt.Errorf("fetched %d pages, want %d", pages, want)
	}
	return tn.users, nil
}

// get sends a GET through the baseline's pipeline; stream leaves the body
// unread for the caller.
func (tn *benchTenant) get(ctx context.Context, rawURL string, stream bool) (*http.Response, error) {
	req, err := azruntime.NewRequest(ctx, http.MethodGet, rawURL)
	if err != nil {
		return nil, err
	}
	req.Raw().Header.Set("Accept", "application/json")
	if stream {
		azruntime.SkipBodyDownload(req)
	}
	resp, err := tn.pipeline.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, azruntime.NewResponseError(resp)
	}
	return resp, nil
}

// measureListing runs list b.N times and reports, per user: wall time,
// process CPU time (the in-process fake Graph's included), bytes and
// allocations, and users per second. Every listing must list users users.
func measureListing(b *testing.B, users int, list func(context.Context) (int, error)) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	cpu := processCPU()
	for b.Loop() {
		n, err := list(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		if n != users {
			b.Fatalf("listed %d users, want %d", n, users)
		}
	}
	cpu = processCPU() - cpu
	runtime.ReadMemStats(&after)
	total := float64(b.N) * float64(users)
	b.ReportMetric(total/b.Elapsed().Seconds(), "users/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/total, "ns/user")
	b.ReportMetric(float64(cpu.Nanoseconds())/total, "cpu-ns/user")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/total, "B/user")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/total, "allocs/user")
}

// processCPU is the CPU time the whole process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakHeapDuring runs f after a collection and returns the most heap memory
// held by objects, live or not yet swept, in samples taken every millisecond
// while f ran. Reading runtime/metrics does not stop the world.
func peakHeapDuring(f func() error) (uint64, error) {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	done, peak := make(chan struct{}), make(chan uint64)
	go func() {
		p := read()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				peak <- max(p, read())
				return
			case <-tick.C:
				p = max(p, read())
			}
		}
	}()
	err := f()
	close(done)
	return <-peak, err
}
