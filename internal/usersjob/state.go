package usersjob

import (
	"context"
	"crypto/rand"
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
	// WriteID is new with every write: a blob that holds it was written by
	// that write, though its answer was lost.
	WriteID string `json:"writeId,omitempty"`
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
	// unsure is the write ID of a write that failed without a conflict,
	// such as one its context cut short: storage may have applied it
	// before its answer was lost, and the ETag then changed with it.
	unsure string
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
// one wrote it since this run read or wrote it. A write of this run's whose
// answer was lost is no one else's: storage may apply an attempt and answer
// 500, or its answer may be cut off, and the retried attempt then meets a
// conflict with the first (409 or 412). Each write puts an ID of its own in
// the state, by which a blob that holds it is known as this run's.
func (b *stateBlob) write(ctx context.Context, st state) error {
	if b.unsure != "" {
		// Known or not, the next Put tells: a conflict with someone
		// else's write, or none.
		_, _ = b.adopt(ctx, b.unsure)
		b.unsure = ""
	}
	st.Version = stateVersion
	st.WriteID = rand.Text()
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the state: %w", err)
	}
	etag, err := b.store.Put(ctx, b.name, data, b.etag)
	if err == nil {
		b.etag = etag
		return nil
	}
	if !errors.Is(err, storage.ErrConflict) {
		b.unsure = st.WriteID
		return err
	}
	ours, rerr := b.adopt(ctx, st.WriteID)
	if ours {
		return nil
	}
	if rerr != nil {
		// Whose write it was is not known yet: the next write looks again.
		b.unsure = st.WriteID
	}
	return err
}

// adopt takes the blob's ETag when the blob holds what the write whose ID
// is id wrote.
func (b *stateBlob) adopt(ctx context.Context, id string) (bool, error) {
	data, etag, err := b.store.Get(ctx, b.name)
	if err != nil {
		return false, err
	}
	var cur struct {
		WriteID string `json:"writeId"`
	}
	if json.Unmarshal(data, &cur) != nil || cur.WriteID != id {
		return false, nil
	}
	b.etag = etag
	return true, nil
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
