package customhandler

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// MaxInvocationBytes bounds an invocation body; a timer invocation is a few
// hundred bytes.
const MaxInvocationBytes = 1 << 20

// Runner does the work behind one invocation. It returns the lines for the
// response's Logs, on failure too, where they say how far the run got.
type Runner interface {
	Run(ctx context.Context) (logs []string, err error)
}

// NewServer returns the handler the Functions host talks to: GET / answers
// the host's readiness probe and POST /<fn.Name> runs one invocation.
func NewServer(logger *slog.Logger, fn Function, runner Runner) http.Handler {
	mux := http.NewServeMux()
	addRoutes(mux, logger, fn, runner)
	return mux
}

// handleReady answers the host's readiness probe.
func handleReady() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeError(w, http.StatusMethodNotAllowed, "use GET /", http.MethodGet)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}

// handleInvoke runs one invocation of fn. One run at a time: an invocation
// that arrives during a run is answered at once and starts nothing.
func handleInvoke(logger *slog.Logger, fn Function, runner Runner) http.Handler {
	var running sync.Mutex
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			writeError(w, http.StatusMethodNotAllowed, "invoke with POST /"+fn.Name, http.MethodPost)
			return
		}
		// A body still arriving when the handler stops is given up at once.
		stopRead := context.AfterFunc(r.Context(), func() {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now())
		})
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxInvocationBytes))
		stopRead()
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				writeError(w, http.StatusRequestEntityTooLarge, "invocation body over 1 MiB")
				return
			}
			writeError(w, http.StatusBadRequest, "read invocation body: "+err.Error())
			return
		}
		inv, err := DecodeInvocation(body)
		if err != nil {
			logger.Warn("rejected a malformed invocation", "function", fn.Name, "error", err)
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		log := logger.With("function", fn.Name, "invocation_id", r.Header.Get("X-Azure-Functions-InvocationId"))
		timer, ok := inv.Timer(fn.Binding)
		if !ok {
			log.Debug("invocation has no readable timer binding", "binding", fn.Binding)
		}
		attrs := []any{"past_due", timer.IsPastDue}
		if rc := inv.Metadata.RetryContext; rc != nil {
			attrs = append(attrs, "retry_count", rc.RetryCount, "max_retry_count", rc.MaxRetryCount)
		}

		if !running.TryLock() {
			const msg = "skipped: a listing is already in progress; this invocation starts none"
			log.Info(msg)
			writeJSON(w, http.StatusOK, NewResponse(msg))
			return
		}
		defer running.Unlock()

		log.Info("invocation started", attrs...)
		logs, err := runner.Run(r.Context())
		if err != nil {
			// The host throws a failed invocation's body away: stderr is where
			// the reason survives.
			log.Error("invocation failed", "error", err)
			writeJSON(w, http.StatusInternalServerError, NewResponse(append(logs, "failed: "+err.Error())...))
			return
		}
		writeJSON(w, http.StatusOK, NewResponse(logs...))
	})
}

// handleNotFound answers every path the handler does not serve.
func handleNotFound() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such route: "+r.URL.Path)
	})
}

// writeJSON writes v as the JSON body of a response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The status line is out; a failed write can only mean the host hung up.
	_ = json.NewEncoder(w).Encode(v)
}

// writeError writes {"error": msg} with the given status; allow, if given,
// becomes the Allow header.
func writeError(w http.ResponseWriter, status int, msg string, allow ...string) {
	for _, m := range allow {
		w.Header().Add("Allow", m)
	}
	writeJSON(w, status, map[string]string{"error": msg})
}
