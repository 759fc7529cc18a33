package usersjob

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"graphuserstimer/internal/storage"
)

// linkLifetime is how long Graph keeps a delta link for directory objects.
// A link older than that is not tried: the round starts with a full
// listing.
const linkLifetime = 7 * 24 * time.Hour

// state is where delta mode stands, kept in one small JSON blob of the
// container, state/<host id>/<function>.json, written with conditions so that two
// writers never overwrite each other.
type state struct {
	// Version is the blob's format.
	Version int `json:"version"`
	// Link is where the next round begins: a deltaLink, or the nextLink
	// of a round that stopped at its deadline.
	Link string `json:"link"`
	// LinkSince is when the deltaLink that Link comes from was issued:
	// Graph keeps it 7 days.
	LinkSince time.Time `json:"linkSince"`
	// Select is the $select the link was asked with, which it carries:
	// a round from it reports those properties and no other, so another
	// GRAPH_USERS_SELECT needs a new link and a full listing.
	Select []string `json:"select,omitempty"`
	// ExportFrom, when set, is where the round whose export is not yet
	// committed began: a run that fails before it commits carries on from
	// there, so that every change lands in an export.
	ExportFrom string `json:"exportFrom,omitempty"`
	// FullListingAt is when the last full listing began.
	FullListingAt time.Time `json:"fullListingAt"`
	// Last sums up the last run that moved the state on.
	Last stateRun `json:"last"`
}

// stateRun sums up a run in the state.
type stateRun struct {
	At      time.Time `json:"at"`
	Mode    string    `json:"mode"`
	Users   int       `json:"users,omitempty"`
	Changed int       `json:"changed,omitempty"`
	Removed int       `json:"removed,omitempty"`
	Pages   int       `json:"pages"`
	// Stopped says the round stopped at its deadline, to go on next run.
	Stopped bool `json:"stopped,omitempty"`
}

// stateVersion is the state blob's format.
const stateVersion = 1

// stateBlob keeps the state blob's content and ETag.
type stateBlob struct {
	store *storage.Container
	name  string
	etag  azcore.ETag // "" until the blob exists
	// unsure is what a write that its context cut short tried to write:
	// storage may have written it before its answer was given up on, and
	// the ETag then changed with it.
	unsure []byte
}

// stateName is the blob of fn's state in the app whose host ID is host.
func stateName(host, fn string) string { return "state/" + host + "/" + fn + ".json" }

// oldStateName is where versions that knew no host ID kept fn's state,
// shared by every app of the account.
func oldStateName(fn string) string { return "state/" + fn + ".json" }

// read reads the state; found is false when there is none yet.
func (b *stateBlob) read(ctx context.Context) (st state, found bool, err error) {
	data, etag, err := b.store.Get(ctx, b.name)
	if errors.Is(err, storage.ErrNotFound) {
		return state{}, false, nil
	}
	if err != nil {
		return state{}, false, err
	}
	if err := json.Unmarshal(data, &st); err != nil || st.Version != stateVersion || st.Link == "" {
		why := "it holds no link"
		switch {
		case err != nil:
			why = err.Error()
		case st.Version != stateVersion:
			why = fmt.Sprintf("its version is %d, not %d", st.Version, stateVersion)
		}
		return state{}, false, &corruptStateError{container: b.store.Name(), blob: b.name, why: why}
	}
	b.etag = etag
	return st, true, nil
}

// write writes the state: created if it was not there, replaced only if no
// one wrote it since this run read or wrote it.
func (b *stateBlob) write(ctx context.Context, st state) error {
	st.Version = stateVersion
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the state: %w", err)
	}
	if b.unsure != nil {
		// A blob that holds what this run tried to write was written by
		// this run: its ETag is ours, not a sign of someone else.
		if cur, etag, err := b.store.Get(ctx, b.name); err == nil && bytes.Equal(cur, b.unsure) {
			b.etag = etag
		}
		b.unsure = nil
	}
	etag, err := b.store.Put(ctx, b.name, data, b.etag)
	if err != nil {
		if ctx.Err() != nil {
			b.unsure = data
		}
		return err
	}
	b.etag = etag
	return nil
}

// corruptStateError is a state blob the job cannot read.
type corruptStateError struct{ container, blob, why string }

func (e *corruptStateError) Error() string {
	return fmt.Sprintf("the delta state %s/%s cannot be read (%s): delete the blob to start over with a full listing "+
		"(az storage blob delete --container-name %s --name %s, with the account of GRAPH_USERS_STORAGE)",
		e.container, e.blob, e.why, e.container, e.blob)
}

// sameSelect reports whether two $select lists name the same properties,
// in any order and case, as Graph reads them.
func sameSelect(a, b []string) bool {
	norm := func(props []string) []string {
		out := make([]string, len(props))
		for i, p := range props {
			out[i] = strings.ToLower(strings.TrimSpace(p))
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	return slices.Equal(norm(a), norm(b))
}
