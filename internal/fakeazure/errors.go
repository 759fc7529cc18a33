package fakeazure

import (
	"net/http"
	"time"
)

// graphError is a Graph error response: its status and the code and message of its body.
type graphError struct {
	status        int
	code, message string
}

// requestIDs are the ids Graph puts in the headers and the innerError of each response.
type requestIDs struct {
	request, client string
}

// newRequestIDs makes a request id and echoes the caller's client-request-id; like Graph, it
// reuses the request id when the caller sent none.
func newRequestIDs(r *http.Request) requestIDs {
	ids := requestIDs{request: newGUID(), client: r.Header.Get("client-request-id")}
	if ids.client == "" {
		ids.client = ids.request
	}
	return ids
}

// set writes the ids as response headers.
func (ids requestIDs) set(h http.Header) {
	h.Set("request-id", ids.request)
	h.Set("client-request-id", ids.client)
}

// writeGraphError answers with e in Graph's error shape.
func writeGraphError(w http.ResponseWriter, ids requestIDs, e *graphError) {
	b := make([]byte, 0, 256+len(e.message))
	b = append(b, `{"error":{"code":`...)
	b = appendJSONString(b, e.code)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, e.message)
	b = append(b, `,"innerError":{"date":"`...)
	b = time.Now().UTC().AppendFormat(b, "2006-01-02T15:04:05")
	b = append(b, `","request-id":`...)
	b = appendJSONString(b, ids.request)
	b = append(b, `,"client-request-id":`...)
	b = appendJSONString(b, ids.client)
	b = append(b, "}}}"...)
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`)
	}
	writeBody(w, e.status, "application/json", b)
}

// appServiceError is the error body of the App Service managed identity endpoint.
type appServiceError struct {
	StatusCode    int    `json:"statusCode"`
	Message       string `json:"message"`
	CorrelationID string `json:"correlationId,omitempty"`
}

// imdsError is the error body of IMDS, in OAuth's shape.
type imdsError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}
