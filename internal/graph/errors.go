package graph

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// ResponseError is a Graph response that is not a success, with what Graph
// said about it.
type ResponseError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Code is Graph's error code, such as Authorization_RequestDenied.
	Code string
	// Message is Graph's error message.
	Message string
	// RequestID identifies the request to Microsoft support.
	RequestID string
	// Hint says what to do about it, where the caller knows.
	Hint string
}

// Error says what Graph answered and, where it can, what to do about it.
func (e *ResponseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "graph answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " [request-id %s]", e.RequestID)
	}
	if e.Hint != "" {
		b.WriteString(": ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// listingHint says what to do about a failed page of users.
func listingHint(e *ResponseError) string {
	switch {
	case e.StatusCode == http.StatusForbidden:
		return "grant the managed identity the Microsoft Graph application permission User.Read.All " +
			"(README, \"Grant User.Read.All to the identity\"); a new grant can take a few minutes to apply"
	case e.StatusCode == http.StatusUnauthorized:
		return "Graph refused the token: check that GRAPH_ENDPOINT is the Graph root the token's audience names " +
			"(the token is asked for GRAPH_ENDPOINT/.default)"
	case e.Code == CodeExpiredPageToken:
		return "the page token expired before the next page was read"
	}
	return ""
}

// CodeExpiredPageToken is Graph's error code for a nextLink whose page token
// has expired; the listing has to start again.
const CodeExpiredPageToken = "Directory_ExpiredPageToken"

// maxErrorBody bounds how much of an error body is read.
const maxErrorBody = 64 << 10

// newResponseError reads a failed page's error, with a hint.
func newResponseError(resp *http.Response) *ResponseError {
	e := ReadResponseError(resp)
	e.Hint = listingHint(e)
	return e
}

// ReadResponseError reads Graph's error body from resp, which it closes.
func ReadResponseError(resp *http.Response) *ResponseError {
	defer resp.Body.Close()
	e := &ResponseError{StatusCode: resp.StatusCode, RequestID: resp.Header.Get("request-id")}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var eb struct {
		Error struct {
			Code       string `json:"code"`
			Message    string `json:"message"`
			InnerError struct {
				RequestID string `json:"request-id"`
			} `json:"innerError"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &eb) == nil {
		e.Code, e.Message = eb.Error.Code, eb.Error.Message
		if e.RequestID == "" {
			e.RequestID = eb.Error.InnerError.RequestID
		}
	}
	return e
}
