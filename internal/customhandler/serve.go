package customhandler

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// ServeOptions configure Serve. The zero value suits the Functions host.
type ServeOptions struct {
	// ReadTimeout bounds reading one request, its body included; a request
	// that never finishes arriving is dropped after it. 15 s when zero: the
	// host sends an invocation of a few hundred bytes at once.
	ReadTimeout time.Duration
	// ShutdownGrace is how long a shutdown waits for the pending invocation
	// to answer, its run already cancelled, before every connection is
	// closed. 3 s when zero.
	ShutdownGrace time.Duration
}

// Serve serves h on ln until ctx ends. Every request's context ends with
// ctx, so a run in progress is cancelled at once and answers its invocation
// while its connection is open; after ShutdownGrace, whatever is left is
// closed. It returns nil once ctx ended and the server shut down.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, o ServeOptions) error {
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 15 * time.Second
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = 3 * time.Second
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: min(10*time.Second, o.ReadTimeout),
		ReadTimeout:       o.ReadTimeout,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	grace, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(grace); err != nil {
		// Past the grace: nothing is left worth waiting for.
		_ = srv.Close()
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
