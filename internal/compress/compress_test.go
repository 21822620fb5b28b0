package compress

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"strada/internal/httpbody"
)

func TestNegotiate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		header []string
		want   string
	}{
		{"no header", nil, ""},
		{"empty header", []string{""}, ""},
		{"gzip only", []string{"gzip"}, Gzip},
		{"x-gzip", []string{"x-gzip"}, Gzip},
		{"browser", []string{"gzip, deflate, br, zstd"}, Zstd},
		{"case and spaces", []string{"  GZip ;Q=0.5 "}, Gzip},
		{"client prefers gzip", []string{"zstd;q=0.5, gzip;q=0.9"}, Gzip},
		{"equal q: server prefers zstd", []string{"gzip;q=0.8, zstd;q=0.8"}, Zstd},
		{"zstd refused", []string{"zstd;q=0, gzip"}, Gzip},
		{"all refused", []string{"zstd;q=0, gzip;q=0"}, ""},
		{"star", []string{"*"}, Zstd},
		{"star with zstd refused", []string{"*;q=0.5, zstd;q=0"}, Gzip},
		{"star refused", []string{"*;q=0"}, ""},
		{"identity only", []string{"identity"}, ""},
		{"unknown only", []string{"br, deflate"}, ""},
		{"several header lines", []string{"br", "gzip;q=0.3"}, Gzip},
		{"malformed q skipped", []string{"zstd;q=2, gzip;q=abc, gzip;q=0.1"}, Gzip},
		{"q with too many places skipped", []string{"zstd;q=0.1234, gzip"}, Gzip},
		{"q=1.000", []string{"gzip;q=1.000"}, Gzip},
		{"other params ignored", []string{"gzip;level=9"}, Gzip},
		{"empty items", []string{",, ,gzip,"}, Gzip},
		{"smallest q still accepted", []string{"gzip;q=0.001"}, Gzip},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Negotiate(tc.header); got != tc.want {
				t.Errorf("Negotiate(%q) = %q, want %q", tc.header, got, tc.want)
			}
		})
	}
}

func decode(t *testing.T, coding string, body []byte) []byte {
	t.Helper()
	switch coding {
	case "":
		return body
	case Gzip:
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("gzip answer: %v", err)
		}
		out, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("gzip answer: %v", err)
		}
		return out
	case Zstd:
		zr, err := zstd.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("zstd answer: %v", err)
		}
		defer zr.Close()
		out, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("zstd answer: %v", err)
		}
		return out
	}
	t.Fatalf("unexpected coding %q", coding)
	return nil
}

func jsonOf(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"changes":[`)
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"collection":"camp_visits","id":"` + strconv.Itoa(i) + `","op":"upsert","record":{"needs":"documenti"}}`)
	}
	b.WriteString("]}\n")
	return []byte(b.String())
}

func TestWriter(t *testing.T) {
	t.Parallel()
	big, small := jsonOf(200), []byte(`{"status":400,"code":"invalid_limit"}`+"\n")
	cases := []struct {
		name       string
		accept     string
		status     int
		body       []byte
		preset     string // Content-Encoding the handler set itself
		wantCoding string
	}{
		{"big, gzip", "gzip", 200, big, "", Gzip},
		{"big, zstd", "zstd, gzip", 200, big, "", Zstd},
		{"big, no Accept-Encoding", "", 200, big, "", ""},
		{"big, identity only", "identity", 200, big, "", ""},
		{"small stays plain", "gzip, zstd", 200, small, "", ""},
		{"big error answer compressed too", "gzip", 400, big, "", Gzip},
		{"already encoded by the handler", "gzip", 200, big, "br", "br"},
		{"no content", "gzip", 204, nil, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(http.MethodGet, "/api/sync/pull", nil)
			if tc.accept != "" {
				req.Header.Set("Accept-Encoding", tc.accept)
			}
			rec := httptest.NewRecorder()
			w := NewWriter(rec, req)
			if tc.preset != "" {
				w.Header().Set("Content-Encoding", tc.preset)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(tc.status)
			// Written in pieces, as an encoder may.
			for chunk := range slicesOf(tc.body, 700) {
				if _, err := w.Write(chunk); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			res := rec.Result()
			if res.StatusCode != tc.status {
				t.Errorf("got status %d, want %d", res.StatusCode, tc.status)
			}
			if got := res.Header.Get("Content-Encoding"); got != tc.wantCoding {
				t.Errorf("got Content-Encoding %q, want %q", got, tc.wantCoding)
			}
			if got := res.Header.Get("Vary"); got != "Accept-Encoding" {
				t.Errorf("got Vary %q, want Accept-Encoding", got)
			}
			if tc.status == http.StatusNoContent {
				if rec.Body.Len() != 0 || res.Header.Get("Content-Length") != "" {
					t.Errorf("got body %d bytes, Content-Length %q on 204, want none", rec.Body.Len(), res.Header.Get("Content-Length"))
				}
				return
			}
			if got, want := res.Header.Get("Content-Length"), strconv.Itoa(rec.Body.Len()); got != want {
				t.Errorf("got Content-Length %q, want %s", got, want)
			}
			coding := tc.wantCoding
			if coding == "br" {
				coding = ""
			}
			if got := decode(t, coding, rec.Body.Bytes()); !bytes.Equal(got, tc.body) {
				t.Errorf("got decoded body of %d bytes, want the %d written", len(got), len(tc.body))
			}
			if tc.wantCoding == Gzip || tc.wantCoding == Zstd {
				if rec.Body.Len()*5 > len(tc.body) {
					t.Errorf("got %d bytes for %d of repetitive JSON, want at least 5× fewer", rec.Body.Len(), len(tc.body))
				}
			}
		})
	}
}

func slicesOf(b []byte, n int) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(b) > 0 {
			k := min(n, len(b))
			if !yield(b[:k]) {
				return
			}
			b = b[k:]
		}
	}
}

// TestWriterStreams checks that a flushed answer goes out at once,
// compressed and chunked, and decodes to what was written.
func TestWriterStreams(t *testing.T) {
	t.Parallel()
	first, second := jsonOf(50), jsonOf(80)
	flushed := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w := NewWriter(rw, r)
		w.Write(first)
		w.Flush()
		<-flushed
		w.Write(second)
		if err := w.Close(); err != nil {
			t.Error(err)
		}
	}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	res, err := srv.Client().Transport.RoundTrip(req)
	if err != nil {
		close(flushed)
		t.Fatal(err)
	}
	defer res.Body.Close()
	close(flushed)
	if got := res.Header.Get("Content-Encoding"); got != Gzip {
		t.Errorf("got Content-Encoding %q, want gzip", got)
	}
	if res.ContentLength != -1 {
		t.Errorf("got Content-Length %d on a streamed answer, want none", res.ContentLength)
	}
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := decode(t, Gzip, raw), append(append([]byte{}, first...), second...); !bytes.Equal(got, want) {
		t.Errorf("got %d decoded bytes, want %d", len(got), len(want))
	}
}

func encodeT(t *testing.T, coding string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Encode(&b, coding, data); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// bomb is a gzip body of 512 KiB that expands to 512 MiB: 512 members of
// 1 MiB of zeros each.
func bomb(t *testing.T) []byte {
	member := encodeT(t, Gzip, make([]byte, 1<<20))
	return bytes.Repeat(member, 512)
}

func TestReadBody(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	all := jsonOf(1000)
	body := all[:limit-10]
	exact := all[:limit]
	over := all[:limit+1]
	gz := encodeT(t, Gzip, body)
	cases := []struct {
		name     string
		encoding []string
		body     []byte
		want     []byte
		wantErr  error
	}{
		{"plain", nil, body, body, nil},
		{"identity", []string{"identity"}, body, body, nil},
		{"gzip", []string{"gzip"}, gz, body, nil},
		{"x-gzip, upper case", []string{"X-GZIP"}, gz, body, nil},
		{"zstd", []string{"zstd"}, encodeT(t, Zstd, body), body, nil},
		{"gzip at the limit", []string{"gzip"}, encodeT(t, Gzip, exact), exact, nil},
		{"gzip one byte over the limit once decoded", []string{"gzip"}, encodeT(t, Gzip, over), nil, httpbody.ErrTooLarge},
		{"zstd over the limit once decoded", []string{"zstd"}, encodeT(t, Zstd, over), nil, httpbody.ErrTooLarge},
		{"plain over the limit", nil, over, nil, httpbody.ErrTooLarge},
		{"gzip bomb", []string{"gzip"}, bomb(t)[:limit-100], nil, httpbody.ErrTooLarge},
		{"corrupt gzip", []string{"gzip"}, append([]byte{0x1f, 0x8b}, body[:100]...), nil, ErrCorrupt},
		{"truncated gzip", []string{"gzip"}, gz[:len(gz)/2], nil, ErrCorrupt},
		{"gzip with a wrong checksum", []string{"gzip"}, flipCRC(gz), nil, ErrCorrupt},
		{"gzip with trailing garbage", []string{"gzip"}, append(append([]byte{}, gz...), "garbage"...), nil, ErrCorrupt},
		{"plain JSON sent as gzip", []string{"gzip"}, body, nil, ErrCorrupt},
		{"empty gzip body", []string{"gzip"}, nil, nil, ErrCorrupt},
		{"corrupt zstd", []string{"zstd"}, append([]byte{0x28, 0xb5, 0x2f, 0xfd}, body[:100]...), nil, ErrCorrupt},
		{"brotli", []string{"br"}, body, nil, ErrUnsupportedEncoding},
		{"deflate", []string{"deflate"}, body, nil, ErrUnsupportedEncoding},
		{"two codings", []string{"gzip, gzip"}, gz, nil, ErrUnsupportedEncoding},
		{"two header lines", []string{"gzip", "zstd"}, gz, nil, ErrUnsupportedEncoding},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(http.MethodPost, "/api/sync/push", bytes.NewReader(tc.body))
			for _, v := range tc.encoding {
				req.Header.Add("Content-Encoding", v)
			}
			got, err := ReadBody(httptest.NewRecorder(), req, limit)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got error %v, want %v", err, tc.wantErr)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("got %d bytes, want %d", len(got), len(tc.want))
			}
		})
	}
}

func flipCRC(gz []byte) []byte {
	out := append([]byte{}, gz...)
	out[len(out)-8] ^= 0xff // the CRC-32 of the gzip trailer
	return out
}

// TestDecodeBombBounded checks that a body expanding to 512 MiB is refused
// having decoded about the limit, not the whole stream: the memory it
// allocates stays a small multiple of the limit.
func TestDecodeBombBounded(t *testing.T) {
	data := bomb(t)
	const limit = httpbody.MaxBytes
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := Decode(Gzip, data, limit)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, httpbody.ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16*uint64(limit) {
		t.Errorf("got %d bytes allocated to refuse the bomb, want at most %d", alloc, 16*limit)
	}
}
