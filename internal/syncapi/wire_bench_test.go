package syncapi_test

import (
	"bytes"
	stdgzip "compress/gzip"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"strada/internal/apptest"
	"strada/internal/compress"
	"strada/internal/domain"
	"strada/internal/syncclient"
)

// link is a TCP proxy that behaves like a mobile link: each direction
// carries bps bits per second (a chunk waits for the ones before it to be
// sent, then takes its own size over the rate) and delivers every chunk
// one way's delay (half of rtt) after it was sent; bps 0 is no limit. It
// counts the bytes that cross it each way, HTTP headers included.
type link struct {
	ln       net.Listener
	target   string
	rtt      time.Duration
	bps      float64
	up, down atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
	closed   bool
}

func newLink(b testing.TB, target string, rtt time.Duration, bps float64) *link {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	l := &link{ln: ln, target: target, rtt: rtt, bps: bps}
	l.wg.Add(1)
	go l.accept()
	b.Cleanup(l.close)
	return l
}

func (l *link) accept() {
	defer l.wg.Done()
	for {
		client, err := l.ln.Accept()
		if err != nil {
			return // closed
		}
		server, err := net.Dial("tcp", l.target)
		if err != nil {
			client.Close()
			continue
		}
		if !l.track(client, server) {
			return
		}
		l.wg.Add(2)
		go l.carry(client, server, &l.up)
		go l.carry(server, client, &l.down)
	}
}

func (l *link) track(conns ...net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	l.conns = append(l.conns, conns...)
	return true
}

type chunk struct {
	data []byte
	at   time.Time
}

// carry moves bytes from src to dst at the link's rate and delay, until
// src ends; then it half-closes dst.
func (l *link) carry(src, dst net.Conn, count *atomic.Int64) {
	defer l.wg.Done()
	line := make(chan chunk, 1024)
	done := make(chan struct{})
	go func() { // the far end of the line; ends when line is closed
		defer close(done)
		broken := false
		for c := range line {
			time.Sleep(time.Until(c.at))
			if !broken {
				if _, err := dst.Write(c.data); err != nil {
					broken = true
				}
			}
		}
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	}()
	var free time.Time // when the link has sent what it was given
	buf := make([]byte, 16<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			count.Add(int64(n))
			start := time.Now()
			if start.Before(free) {
				start = free
			}
			free = start
			if l.bps > 0 {
				free = start.Add(time.Duration(float64(n) * 8 / l.bps * float64(time.Second)))
			}
			line <- chunk{data: append([]byte(nil), buf[:n]...), at: free.Add(l.rtt / 2)}
		}
		if err != nil {
			break
		}
	}
	close(line)
	<-done
}

func (l *link) close() {
	l.mu.Lock()
	l.closed = true
	conns := l.conns
	l.mu.Unlock()
	l.ln.Close()
	for _, c := range conns {
		c.Close()
	}
	l.wg.Wait()
}

// client is an HTTP client over the link; a new connection costs a round
// trip before its first byte, as TCP's handshake does.
func (l *link) client() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			time.Sleep(l.rtt)
			return (&net.Dialer{}).DialContext(ctx, network, l.ln.Addr().String())
		},
		DisableCompression: true,
	}}
}

var (
	benchGiven  = strings.Fields("Elena Florin Mirela Ionut Denisa Marius Ramona Gabriel Bianca Adrian Sara Dragan Jasmina Senad Fatima Amir Ljuba Zoran Mihaela Nicolae Alina Stefan Roxana Daniel Larisa Bogdan Samira Omar Vesna Goran")
	benchFamily = strings.Fields("Halilovic Stojanovic Nikolic Constantin Dumitru Popescu Ahmetovic Radu Lazar Mitrovic Sejdic Omerovic Petrovic Gheorghe Ionescu Selimovic Jovanovic Barbu Stan Marin")
	benchNeeds  = []string{
		"Rinnovo del permesso di soggiorno scaduto", "Iscrizione scolastica dei figli minori",
		"Richiesta di residenza anagrafica in via fittizia", "Visita pediatrica per la figlia più piccola",
		"Tessera sanitaria smarrita, serve il duplicato", "Ricerca di un corso di formazione professionale",
		"Pratica di invalidità civile ferma all'INPS", "Passaporto da rinnovare presso il consolato",
		"Perdita d'acqua nel modulo abitativo", "Assistenza legale per una notifica del tribunale",
		"Richiesta di pacco alimentare per la famiglia", "Vaccinazioni dei bambini da completare",
		"Codice fiscale da richiedere all'Agenzia delle Entrate", "Certificato di nascita da tradurre",
		"Assegno unico non ancora ricevuto", "Trasporto scolastico sospeso",
	}
	benchActions = []string{
		"Fissato appuntamento all'Ufficio Immigrazione", "Accompagnamento al CUP della ASL Roma 2",
		"Contattata la segreteria della scuola", "Consegnato l'elenco dei centri di formazione",
		"Segnalazione al servizio sociale del Municipio", "Orientamento allo sportello del CAF",
		"Telefonata al mediatore culturale", "Preparata la modulistica con la famiglia",
		"Inviata richiesta al patronato", "Verificata la documentazione presente",
		"Concordato un nuovo colloquio", "Informata la famiglia sui tempi della pratica",
	}
	benchTopics = []string{"documents", "health", "school", "work_training", "housing", "legal", "basic_needs", "other"}
)

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

func sentences(r *rand.Rand, pool []string) string {
	n := 1 + r.IntN(3)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf("%s (%02d/%02d).", pick(r, pool), 1+r.IntN(28), 1+r.IntN(12))
	}
	return strings.Join(parts, " ")
}

// seedFieldWork writes persons and camp visits that look like field work
// (names, years, topics, free text in Italian from a pool, dates) through
// a device's push, as a team builds them up over months.
func seedFieldWork(b *testing.B, e *env, persons, visits int) {
	b.Helper()
	r := rand.New(rand.NewPCG(11, 2026))
	c := e.device(apptest.CampWorker)
	c.HTTP = benchHTTP
	c.BatchSize = 500
	team, site := e.team("camp_outreach"), e.siteOf("camp")
	ids := make([]string, persons)
	for i := range ids {
		ids[i] = newID()
		c.Upsert(domain.Persons, ids[i], map[string]any{
			"team": team, "code": fmt.Sprintf("S-%06d", i), "given_name": pick(r, benchGiven),
			"family_name": pick(r, benchFamily), "birth_year": 1950 + r.IntN(70),
			"gender": pick(r, []string{"female", "male", "undisclosed"}), "nationality": pick(r, []string{"Romania", "Bosnia ed Erzegovina", "Serbia", "Italia", "Kosovo"}),
			"languages": pick(r, []string{"romanes, italiano", "romeno", "serbo, italiano", "italiano"}),
			"site":      site, "consent": pick(r, []string{"verbal", "written"}),
		})
	}
	for range visits {
		met := []string{pick(r, ids)}
		if r.IntN(2) == 0 {
			met = append(met, pick(r, ids))
		}
		c.Upsert(domain.CampVisits, newID(), map[string]any{
			"team": team, "site": site,
			"visited_at":     fmt.Sprintf("2026-%02d-%02d 10:%02d:00.000Z", 1+r.IntN(11), 1+r.IntN(28), r.IntN(60)),
			"households_met": 1 + r.IntN(6), "persons_met": met,
			"topics": []string{pick(r, benchTopics), pick(r, benchTopics)},
			"needs":  sentences(r, benchNeeds), "actions": sentences(r, benchActions),
		})
	}
	res, err := c.Push(context.Background())
	if err != nil {
		b.Fatalf("seed: %v", err)
	}
	for _, x := range res {
		if x.Status != "applied" {
			b.Fatalf("seed: got %+v, want applied", x)
		}
	}
}

// BenchmarkFirstSync measures a new device's first pull of a team's 5,000
// records (1,000 persons, 4,000 camp visits, plus the reference data) over
// a link of 300 ms round trip and 1 Mbit/s each way, and over loopback
// through the same proxy (what the server's work costs), with answers sent
// plain, in gzip and in zstd: seconds to the last page, the bytes that
// crossed the link (both ways, headers included) and the JSON they carried.
// go test ./internal/syncapi -run '^$' -bench BenchmarkFirstSync -benchtime 1x -count 3 -timeout 40m
func BenchmarkFirstSync(b *testing.B) {
	const persons, visits = 1_000, 4_000
	e := newEnv(b)
	seedFieldWork(b, e, persons, visits)
	target, err := url.Parse(e.url)
	if err != nil {
		b.Fatal(err)
	}
	links := []struct {
		name string
		rtt  time.Duration
		bps  float64
	}{{"loopback", 0, 0}, {"300ms-1Mbit", 300 * time.Millisecond, 1e6}}
	for _, shape := range links {
		for _, enc := range []string{"identity", "gzip", "zstd"} {
			b.Run("link="+shape.name+"/encoding="+enc, func(b *testing.B) {
				firstSync(b, e, newLink(b, target.Host, shape.rtt, shape.bps), enc, visits)
			})
		}
	}
}

func firstSync(b *testing.B, e *env, l *link, enc string, visits int) {
	c := e.device(apptest.CampWorker)
	c.HTTP = l.client()
	if enc == "identity" {
		c.DisableCompression = true
	} else {
		c.AcceptEncoding = enc
	}
	var elapsed time.Duration
	var wire, raw int64
	for range b.N {
		c.Store = syncclient.NewMemoryStore()
		up, down, before := l.up.Load(), l.down.Load(), c.Stats()
		start := time.Now()
		if err := c.Pull(context.Background()); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
		after := c.Stats()
		wire += l.up.Load() - up + l.down.Load() - down
		raw += after.ReceivedRawBytes - before.ReceivedRawBytes
		if got := len(c.Store.Bases(domain.CampVisits)); got < visits {
			b.Fatalf("got %d visits, want at least %d", got, visits)
		}
	}
	b.ReportMetric(elapsed.Seconds()/float64(b.N), "s/sync")
	b.ReportMetric(float64(wire)/float64(b.N)/1e3, "wire-kB/sync")
	b.ReportMetric(float64(raw)/float64(b.N)/1e3, "json-kB/sync")
	b.ReportMetric(0, "ns/op")
}

// TestLinkShapes checks the emulated link: what crosses it is counted each
// way, and an answer of 200 kbit on a 1 Mbit/s link with a 200 ms round
// trip takes at least the connection's round trip, the request's round
// trip and 0.2 s of sending (sleeps never end early, so this lower bound
// holds however loaded the machine is).
func TestLinkShapes(t *testing.T) {
	t.Parallel()
	const size = 25_000 // 200 kbit
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write(make([]byte, size))
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	l := newLink(t, ln.Addr().String(), 200*time.Millisecond, 1e6)
	start := time.Now()
	resp, err := l.client().Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	elapsed := time.Since(start)
	if err != nil || n != size {
		t.Fatalf("got %d bytes, %v; want %d", n, err, size)
	}
	if want := 600 * time.Millisecond; elapsed < want {
		t.Errorf("got the answer after %s, want at least %s", elapsed, want)
	}
	if got := l.down.Load(); got < size {
		t.Errorf("got %d bytes counted down the link, want at least %d", got, size)
	}
	if got := l.up.Load(); got == 0 {
		t.Error("got no bytes counted up the link, want the request")
	}
}

// BenchmarkAnswerEncoding compresses one real snapshot page of 500 records
// with each coding the server could use: Go's compress/gzip, the gzip of
// klauspost/compress (what the server uses) and its zstd, reporting the
// speed and the size ratio.
// go test ./internal/syncapi -run '^$' -bench BenchmarkAnswerEncoding -count 5
func BenchmarkAnswerEncoding(b *testing.B) {
	e := newEnv(b)
	seedFieldWork(b, e, 200, 800)
	c := e.device(apptest.CampWorker)
	req, err := http.NewRequest(http.MethodGet, e.url+"/api/sync/pull?limit=500", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", c.Token)
	req.Header.Set("X-Strada-Device", c.DeviceID)
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := benchHTTP.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "" {
		b.Fatalf("got %d %q, %v; want a plain 200 page", resp.StatusCode, resp.Header.Get("Content-Encoding"), err)
	}
	codecs := []struct {
		name   string
		encode func(*bytes.Buffer, []byte) error
	}{
		{"stdlib-gzip", func(dst *bytes.Buffer, data []byte) error {
			w := stdgzip.NewWriter(dst)
			if _, err := w.Write(data); err != nil {
				return err
			}
			return w.Close()
		}},
		{"gzip", func(dst *bytes.Buffer, data []byte) error { return compress.Encode(dst, compress.Gzip, data) }},
		{"zstd", func(dst *bytes.Buffer, data []byte) error { return compress.Encode(dst, compress.Zstd, data) }},
	}
	for _, codec := range codecs {
		b.Run("page=500/codec="+codec.name, func(b *testing.B) {
			var out bytes.Buffer
			b.SetBytes(int64(len(page)))
			for b.Loop() {
				out.Reset()
				if err := codec.encode(&out, page); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(page))/float64(out.Len()), "ratio")
		})
	}
}
