package compress

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"strada/internal/httpbody"
)

// Error codes of request bodies that cannot be decoded.
const (
	CodeUnsupportedEncoding = "unsupported_encoding"
	CodeCorruptBody         = "corrupt_body"
)

var (
	// ErrUnsupportedEncoding is returned for a Content-Encoding other than
	// gzip, zstd or identity, or for more than one coding: answer 415.
	ErrUnsupportedEncoding = errors.New("unsupported content encoding")
	// ErrCorrupt is returned for a body that does not decode in its
	// Content-Encoding: answer 400.
	ErrCorrupt = errors.New("corrupt compressed body")
)

// RequestCoding returns the coding of r's body: "" (identity), Gzip or
// Zstd, or ErrUnsupportedEncoding.
func RequestCoding(r *http.Request) (string, error) {
	return ContentCoding(r.Header.Values("Content-Encoding"))
}

// ContentCoding reads the values of a Content-Encoding header: "" for
// identity, Gzip or Zstd, or ErrUnsupportedEncoding for any other coding
// or for more than one.
func ContentCoding(values []string) (string, error) {
	coding := ""
	for _, value := range values {
		for _, item := range strings.Split(value, ",") {
			c := strings.ToLower(strings.TrimSpace(item))
			switch {
			case c == "" || c == Identity:
				continue
			case c == "x-gzip":
				c = Gzip
			case c != Gzip && c != Zstd:
				return "", fmt.Errorf("%w: %q", ErrUnsupportedEncoding, item)
			}
			if coding != "" {
				return "", fmt.Errorf("%w: more than one coding", ErrUnsupportedEncoding)
			}
			coding = c
		}
	}
	return coding, nil
}

// ReadBody returns r's body decoded from its Content-Encoding, if it is at
// most limit bytes both as sent and once decoded; else
// httpbody.ErrTooLarge. At most limit+1 decoded bytes are ever produced, so
// a small body that would expand without end is refused as soon as it
// passes the limit. A body that does not decode is ErrCorrupt; an unknown
// coding is ErrUnsupportedEncoding, found before the body is read.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	coding, err := RequestCoding(r)
	if err != nil {
		return nil, err
	}
	raw, err := httpbody.Read(w, r, limit)
	if err != nil || coding == "" {
		return raw, err
	}
	return Decode(coding, raw, limit)
}

// Decode decodes data in coding (Gzip or Zstd), producing at most limit
// bytes: more is httpbody.ErrTooLarge, an invalid stream ErrCorrupt.
func Decode(coding string, data []byte, limit int64) ([]byte, error) {
	var rd io.Reader
	switch coding {
	case Gzip:
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		defer zr.Close()
		rd = zr
	case Zstd:
		zr, err := zstd.NewReader(bytes.NewReader(data), zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(8<<20))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		defer zr.Close()
		rd = zr
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedEncoding, coding)
	}
	out, err := io.ReadAll(io.LimitReader(rd, limit+1))
	if int64(len(out)) > limit {
		return nil, httpbody.ErrTooLarge
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return out, nil
}
