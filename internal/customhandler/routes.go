package customhandler

import (
	"log/slog"
	"net/http"
)

// addRoutes is the handler's table of contents.
func addRoutes(mux *http.ServeMux, logger *slog.Logger, fn Function, runner Runner) {
	mux.Handle("/{$}", handleReady())
	mux.Handle("/"+fn.Name, handleInvoke(logger, fn, runner))
	mux.Handle("/", handleNotFound())
}
