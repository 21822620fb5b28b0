// Package httpbody reads request bodies under a size limit. A body over the
// limit is answered 413 only after the client has been let finish sending
// (up to a bound), so that it reads the answer instead of a reset
// connection.
package httpbody

import (
	"errors"
	"io"
	"net/http"
)

// MaxBytes is the largest request body Strada accepts on any route; routes
// that need less read under a smaller limit.
const MaxBytes int64 = 1 << 20

// CodeTooLarge is the error code of a body over the limit.
const CodeTooLarge = "body_too_large"

// drainBound is how much of an oversized body is read and discarded so
// that the client receives the 413; past it the connection is closed.
const drainBound = 8 << 20

// ErrTooLarge is returned for a body over the limit.
var ErrTooLarge = errors.New("request body too large")

// Read returns the body of r if it is at most limit bytes, else
// ErrTooLarge (and marks the connection to close when the rest of the
// body was not drained).
func Read(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	if r.ContentLength > limit {
		refuse(w, r)
		return nil, ErrTooLarge
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > limit {
		refuse(w, r)
		return nil, ErrTooLarge
	}
	return body, nil
}

func refuse(w http.ResponseWriter, r *http.Request) {
	n, _ := io.Copy(io.Discard, io.LimitReader(r.Body, drainBound))
	if n >= drainBound {
		w.Header().Set("Connection", "close")
	}
}
