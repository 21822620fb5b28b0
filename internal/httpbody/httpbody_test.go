package httpbody

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		body      string
		length    int64 // -1: unknown
		wantErr   error
		wantClose bool
	}{
		{name: "under the limit", body: "abc", length: 3},
		{name: "at the limit", body: "abcdefghij", length: 10},
		{name: "declared over the limit", body: "abcdefghijk", length: 11, wantErr: ErrTooLarge},
		{name: "over the limit, unknown length", body: "abcdefghijk", length: -1, wantErr: ErrTooLarge},
		{name: "over the drain bound", body: strings.Repeat("x", drainBound+100), length: -1, wantErr: ErrTooLarge, wantClose: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
			r.ContentLength = tc.length
			w := httptest.NewRecorder()
			got, err := Read(w, r, 10)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got error %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil && string(got) != tc.body {
				t.Fatalf("got body %q, want %q", got, tc.body)
			}
			if close := w.Header().Get("Connection") == "close"; close != tc.wantClose {
				t.Fatalf("got Connection: close %v, want %v", close, tc.wantClose)
			}
		})
	}
}
