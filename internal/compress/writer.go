package compress

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pocketbase/pocketbase/core"
)

// MinSize is the smallest answer that is compressed: below it the coding's
// framing costs about what it saves, so errors and short answers go as
// they are.
const MinSize = 1024

// maxBuffer is how much of an answer is held to send it with its
// Content-Length; a longer answer is streamed (chunked) as it is written.
const maxBuffer = 8 << 20

// zstdWindow bounds the window of zstd answers: RFC 9659 asks senders of
// the "zstd" content coding to keep it at most 8 MiB so that browsers can
// decode them; sync answers need far less.
const zstdWindow = 1 << 20

type encoder interface {
	io.WriteCloser
	Reset(io.Writer)
}

var encoders = map[string]*sync.Pool{
	Gzip: {New: func() any {
		w, err := gzip.NewWriterLevel(io.Discard, gzip.DefaultCompression)
		if err != nil {
			panic(fmt.Sprintf("gzip writer: %v", err)) // the level is a constant
		}
		return encoder(w)
	}},
	Zstd: {New: func() any {
		w, err := zstd.NewWriter(io.Discard, zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(zstdWindow), zstd.WithEncoderLevel(zstd.SpeedDefault))
		if err != nil {
			panic(fmt.Sprintf("zstd writer: %v", err)) // the options are constants
		}
		return encoder(w)
	}},
}

func getEncoder(coding string, dst io.Writer) encoder {
	enc := encoders[coding].Get().(encoder)
	enc.Reset(dst)
	return enc
}

func putEncoder(coding string, enc encoder) {
	enc.Reset(io.Discard)
	encoders[coding].Put(enc)
}

// Encode compresses data with coding (Gzip or Zstd) into dst.
func Encode(dst *bytes.Buffer, coding string, data []byte) error {
	if encoders[coding] == nil {
		return fmt.Errorf("encode: unknown coding %q", coding)
	}
	enc := getEncoder(coding, dst)
	defer putEncoder(coding, enc)
	if _, err := enc.Write(data); err != nil {
		return fmt.Errorf("encode %s: %w", coding, err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("encode %s: %w", coding, err)
	}
	return nil
}

// Middleware compresses the answers of the routes it is bound to in the
// coding the request's Accept-Encoding prefers (see Negotiate), adds
// "Vary: Accept-Encoding", and sends answers under MinSize, and error
// answers that the router writes after the handler returns, as they are.
func Middleware(e *core.RequestEvent) error {
	w := NewWriter(e.Response, e.Request)
	e.Response = w
	err := e.Next()
	e.Response = w.rw
	if !w.Written() {
		// Nothing written: PocketBase's error handler answers, uncompressed.
		return err
	}
	if cerr := w.Close(); cerr != nil && err == nil {
		return cerr
	}
	return err
}

// Writer is an http.ResponseWriter that compresses what is written to it.
// It holds the answer until Close (up to maxBuffer, past which it streams)
// so that it can send a short answer as it is and every answer with its
// Content-Length.
type Writer struct {
	rw      http.ResponseWriter
	coding  string
	head    bool
	status  int
	buf     bytes.Buffer
	enc     encoder // set while streaming compressed
	sending bool    // the header went out: streaming
	closed  bool
}

// NewWriter returns a Writer over rw that answers r in the coding r
// accepts best.
func NewWriter(rw http.ResponseWriter, r *http.Request) *Writer {
	rw.Header().Add("Vary", "Accept-Encoding")
	return &Writer{rw: rw, coding: Negotiate(r.Header.Values("Accept-Encoding")), head: r.Method == http.MethodHead}
}

// Header returns the answer's header.
func (w *Writer) Header() http.Header { return w.rw.Header() }

// WriteHeader records the status; it is sent with the body.
func (w *Writer) WriteHeader(status int) {
	if w.status != 0 || status < 200 {
		return
	}
	w.status = status
}

// Write adds p to the answer.
func (w *Writer) Write(p []byte) (int, error) {
	if w.closed {
		return 0, fmt.Errorf("compress: write after close")
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.sending {
		return w.out().Write(p)
	}
	n, _ := w.buf.Write(p)
	if w.buf.Len() > maxBuffer {
		if err := w.startStream(); err != nil {
			return n, err
		}
	}
	return n, nil
}

// Written reports whether anything was written (PocketBase's
// router.WriteTracker).
func (w *Writer) Written() bool { return w.status != 0 }

// Status is the status written (PocketBase's router.StatusTracker).
func (w *Writer) Status() int { return w.status }

// Unwrap returns the underlying writer (http.ResponseController).
func (w *Writer) Unwrap() http.ResponseWriter { return w.rw }

// Flush sends what was written so far and streams the rest.
func (w *Writer) Flush() {
	if w.closed {
		return
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if !w.sending {
		if err := w.startStream(); err != nil {
			return
		}
	}
	if f, ok := w.enc.(interface{ Flush() error }); ok && w.enc != nil {
		if err := f.Flush(); err != nil {
			return
		}
	}
	_ = http.NewResponseController(w.rw).Flush() // a writer that cannot flush sends at the end
}

func (w *Writer) out() io.Writer {
	if w.enc != nil {
		return w.enc
	}
	return w.rw
}

func (w *Writer) bodyAllowed() bool {
	return !w.head && w.status != http.StatusNoContent && w.status != http.StatusNotModified
}

// compressible reports whether the answer may be compressed at all.
func (w *Writer) compressible() bool {
	return w.coding != "" && w.bodyAllowed() && w.rw.Header().Get("Content-Encoding") == ""
}

func (w *Writer) startStream() error {
	w.sending = true
	h := w.rw.Header()
	h.Del("Content-Length")
	if w.compressible() {
		h.Set("Content-Encoding", w.coding)
		w.enc = getEncoder(w.coding, w.rw)
	}
	w.rw.WriteHeader(w.status)
	_, err := w.out().Write(w.buf.Bytes())
	w.buf.Reset()
	if err != nil {
		return fmt.Errorf("compress: send answer: %w", err)
	}
	return nil
}

// Close sends the answer: compressed when it is at least MinSize, the
// client accepts a coding, and compressing makes it smaller.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	if w.sending {
		if w.enc == nil {
			return nil
		}
		err := w.enc.Close()
		putEncoder(w.coding, w.enc)
		w.enc = nil
		if err != nil {
			return fmt.Errorf("compress: finish %s answer: %w", w.coding, err)
		}
		return nil
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	body := w.buf.Bytes()
	h := w.rw.Header()
	if w.compressible() && len(body) >= MinSize {
		var packed bytes.Buffer
		if err := Encode(&packed, w.coding, body); err != nil {
			return err
		}
		if packed.Len() < len(body) {
			h.Set("Content-Encoding", w.coding)
			body = packed.Bytes()
		}
	}
	if w.bodyAllowed() {
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.rw.WriteHeader(w.status)
	if !w.bodyAllowed() {
		return nil
	}
	if _, err := w.rw.Write(body); err != nil {
		return fmt.Errorf("compress: send answer: %w", err)
	}
	return nil
}
