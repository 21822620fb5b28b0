package simulate

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// wire counts the bytes that cross the network between the devices and the
// server, headers included, at the connection level.
type wire struct {
	sent, received atomic.Int64
}

type countingConn struct {
	net.Conn
	w *wire
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.w.received.Add(int64(n))
	return n, err
}

func (c countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.w.sent.Add(int64(n))
	return n, err
}

// newTransport returns a device's HTTP transport: its connections are
// counted in w and, when local is set, dialled from that address, so that
// a server on loopback sees every device at an address of its own as it
// sees phones on a mobile network.
func newTransport(w *wire, local net.IP) *http.Transport {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	if local != nil {
		d.LocalAddr = &net.TCPAddr{IP: local}
	}
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return countingConn{Conn: c, w: w}, nil
		},
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     90 * time.Second,
	}
}

// Request kinds whose latency is measured.
const (
	kindPush     = "push"
	kindPull     = "pull"
	kindRegister = "register"
	kindOther    = "other"
)

func kindOf(path string) string {
	switch {
	case strings.HasPrefix(path, "/api/sync/push"):
		return kindPush
	case strings.HasPrefix(path, "/api/sync/pull"):
		return kindPull
	case strings.HasPrefix(path, "/api/sync/devices"):
		return kindRegister
	}
	return kindOther
}

// pushAnswer is what the transport reads of a push answer.
type pushAnswer struct {
	Results []Answer `json:"results"`
}

// recorder keeps what every device's transport saw: latencies, every push
// answer (delivered or dropped) and the failures it made.
type recorder struct {
	mu        sync.Mutex
	latencies map[string][]time.Duration
	answers   []Answer
	dropped   int // answers dropped after the server applied the request
	failed    int // requests failed before they reached the server
	refused   int // 429 answers: the server's rate limit
}

func newRecorder() *recorder {
	return &recorder{latencies: map[string][]time.Duration{}}
}

// faultyTransport is one device's link to the server: it fails some
// requests before they leave (no signal) and drops some answers after the
// server applied the request (the connection breaks on the way back). It
// reads every push answer, delivered or dropped, for the checker.
type faultyTransport struct {
	base   http.RoundTripper
	rec    *recorder
	device string

	mu  sync.Mutex
	rnd *rand.Rand
	// before and after are the probabilities of each fault.
	before, after float64
	// watch counts, once set, the requests sent after the device's
	// revocation and the ones the server answered with success.
	watch             bool
	afterRevocation   int
	answeredAfterRevo int
}

func (f *faultyTransport) roll(p float64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return p > 0 && f.rnd.Float64() < p
}

func (f *faultyTransport) setFaults(before, after float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.before, f.after = before, after
}

func (f *faultyTransport) faults() (float64, float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.before, f.after
}

// watchRevocation starts counting the requests made after the device's
// revocation.
func (f *faultyTransport) watchRevocation() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.watch = true
}

// revocationCounts returns the requests sent after the revocation and the
// ones the server answered with success.
func (f *faultyTransport) revocationCounts() (sent, answered int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.afterRevocation, f.answeredAfterRevo
}

// errNoSignal and errAnswerLost are the transport's simulated faults.
var (
	errNoSignal   = errors.New("simulated: no signal")
	errAnswerLost = errors.New("simulated: connection lost after the server answered")
)

func (f *faultyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	before, after := f.faults()
	if f.roll(before) {
		if req.Body != nil {
			if err := req.Body.Close(); err != nil {
				return nil, errors.Join(errNoSignal, err)
			}
		}
		f.rec.mu.Lock()
		f.rec.failed++
		f.rec.mu.Unlock()
		return nil, errNoSignal
	}
	kind := kindOf(req.URL.Path)
	start := time.Now()
	resp, err := f.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	if closeErr := resp.Body.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	drop := f.roll(after)

	f.mu.Lock()
	if f.watch {
		f.afterRevocation++
		if resp.StatusCode < 300 {
			f.answeredAfterRevo++
		}
	}
	f.mu.Unlock()

	f.rec.mu.Lock()
	f.rec.latencies[kind] = append(f.rec.latencies[kind], elapsed)
	if resp.StatusCode == http.StatusTooManyRequests {
		f.rec.refused++
	}
	if drop {
		f.rec.dropped++
	}
	f.rec.mu.Unlock()

	if kind == kindPush && resp.StatusCode == http.StatusOK {
		answers, err := readAnswers(resp.Header.Get("Content-Encoding"), body)
		if err != nil {
			return nil, err
		}
		for i := range answers {
			answers[i].Device = f.device
			answers[i].Delivered = !drop
		}
		f.rec.mu.Lock()
		f.rec.answers = append(f.rec.answers, answers...)
		f.rec.mu.Unlock()
	}
	if drop {
		return nil, errAnswerLost
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// readAnswers decodes the results of a push answer, compressed or not.
func readAnswers(encoding string, body []byte) ([]Answer, error) {
	if strings.EqualFold(encoding, "gzip") {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		plain, err := io.ReadAll(zr)
		if err != nil {
			return nil, err
		}
		body = plain
	}
	var a pushAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, err
	}
	return a.Results, nil
}
