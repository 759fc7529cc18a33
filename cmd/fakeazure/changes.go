package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"graphuserstimer/internal/fakeazure"
)

// changesPath is the local-only endpoint that changes the fake tenant. It lies outside /v1.0 and
// /beta, so no Graph request can reach it.
const changesPath = "/fakeazure/changes"

// maxChanges bounds each count of one request: every changed user holds some state, and a
// demo needs a few thousand changes, not millions.
const maxChanges = 100_000

// withChanges serves g, and POST /fakeazure/changes, which changes g's tenant. Every other path
// reaches g as sent: a ServeMux would clean and redirect paths Graph answers itself.
func withChanges(g *fakeazure.Graph) http.Handler {
	changes := changesHandler(g)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == changesPath {
			changes.ServeHTTP(w, r)
			return
		}
		g.ServeHTTP(w, r)
	})
}

// changedUser is one user a change touched, as the admin endpoint reports it.
type changedUser struct {
	Index             int    `json:"index"`
	ID                string `json:"id"`
	UserPrincipalName string `json:"userPrincipalName"`
}

// changesResponse says what a POST /fakeazure/changes did.
type changesResponse struct {
	Added       []changedUser `json:"added"`
	Updated     []changedUser `json:"updated"`
	Renamed     []changedUser `json:"renamed"`
	SoftDeleted []changedUser `json:"softDeleted"`
	HardDeleted []changedUser `json:"hardDeleted"`
	Restored    []changedUser `json:"restored"`
	Listed      int           `json:"listed"`
}

// changesHandler reads a fakeazure.Changes from the body, makes the changes, and answers which
// users changed.
func changesHandler(g *fakeazure.Graph) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "POST a JSON object of change counts"})
			return
		}
		c, err := decodeChanges(http.MaxBytesReader(w, r.Body, 64<<10))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		changed := g.Change(c)
		users := func(indexes []int) []changedUser {
			out := make([]changedUser, len(indexes))
			for k, i := range indexes {
				out[k] = changedUser{Index: i, ID: fakeazure.UserID(i), UserPrincipalName: g.UPN(i)}
			}
			return out
		}
		writeJSON(w, http.StatusOK, changesResponse{
			Added: users(changed.Added), Updated: users(changed.Updated), Renamed: users(changed.Renamed),
			SoftDeleted: users(changed.SoftDeleted), HardDeleted: users(changed.HardDeleted), Restored: users(changed.Restored),
			Listed: len(g.ListedUsers()),
		})
	})
}

// decodeChanges reads one JSON object of change counts, refusing unknown names and counts out
// of range, so that a typo does not silently change nothing.
func decodeChanges(body io.Reader) (fakeazure.Changes, error) {
	var c fakeazure.Changes
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("read changes: %w; want {\"add\":N,\"update\":N,\"rename\":N,\"softDelete\":N,\"hardDelete\":N,\"restore\":N}", err)
	}
	if dec.More() {
		return c, errors.New("read changes: want one JSON object")
	}
	for name, n := range map[string]int{"add": c.Add, "update": c.Update, "rename": c.Rename,
		"softDelete": c.SoftDelete, "hardDelete": c.HardDelete, "restore": c.Restore} {
		if n < 0 || n > maxChanges {
			return c, fmt.Errorf("%s %d: want 0 to %d", name, n, maxChanges)
		}
	}
	return c, nil
}

// writeJSON answers with status and v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
