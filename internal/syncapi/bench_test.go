package syncapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"strada/internal/apptest"
	"strada/internal/domain"
	"strada/internal/syncclient"
)

// benchHTTP is a client with enough idle connections for the concurrency
// of the benchmarks.
var benchHTTP = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}

func visitFields(team, site string) map[string]any {
	return map[string]any{
		"team": team, "site": site, "visited_at": "2026-11-20 10:00:00.000Z",
		"households_met": 3, "topics": []string{"health", "documents"},
		"needs": "bisogni rilevati durante la visita", "actions": "orientamento ai servizi",
	}
}

// BenchmarkWriteThroughput compares three ways to write camp visits, side
// by side on the same schema, hooks and rules: the sync push (20 devices,
// batches of 100), PocketBase's REST create (one request per record,
// concurrency 50) and PocketBase's batch API (20 clients, batches of 100).
// Each reports records/s, over loopback and over a link with a 100 ms
// round trip, as a phone in the field has. raw-sql is the floor they are
// measured against: the same rows and their change-log rows inserted with
// plain SQL, 100 per transaction, from 20 writers, with no HTTP, no
// validation and no hooks.
// go test ./internal/syncapi -run '^$' -bench BenchmarkWriteThroughput -benchtime 4000x -count 5
func BenchmarkWriteThroughput(b *testing.B) {
	for _, rtt := range []time.Duration{0, 100 * time.Millisecond} {
		client := benchHTTP
		if rtt > 0 {
			client = &http.Client{Transport: &latencyTransport{base: benchHTTP.Transport, rtt: rtt}}
		}
		if rtt == 0 {
			b.Run("raw-sql/writers=20/batch=100", func(b *testing.B) {
				e := newEnv(b)
				team, site := e.team("camp_outreach"), e.siteOf("camp")
				user := apptest.User(b, e.app, apptest.CampWorker)
				runConcurrent(b, 20, 100, func(worker, n int) error {
					return e.app.RunInTransaction(func(tx core.App) error {
						for range n {
							if err := rawVisit(tx, team, site, user.Id); err != nil {
								return err
							}
						}
						return nil
					})
				})
			})
		}
		b.Run(fmt.Sprintf("sync-push/devices=20/batch=100/rtt=%s", rtt), func(b *testing.B) {
			e := newEnv(b)
			team, site := e.team("camp_outreach"), e.siteOf("camp")
			devices := make([]*syncclient.Client, 20)
			for i := range devices {
				devices[i] = e.device(apptest.CampWorker)
				devices[i].HTTP = client
			}
			runConcurrent(b, len(devices), 100, func(worker, n int) error {
				c := devices[worker]
				for range n {
					c.Upsert(domain.CampVisits, newID(), visitFields(team, site))
				}
				res, err := c.Push(context.Background())
				if err != nil {
					return err
				}
				for _, r := range res {
					if r.Status != "applied" {
						return fmt.Errorf("got %+v, want applied", r)
					}
				}
				return nil
			})
		})
		b.Run(fmt.Sprintf("rest-create/concurrency=50/rtt=%s", rtt), func(b *testing.B) {
			e := newEnv(b)
			team, site := e.team("camp_outreach"), e.siteOf("camp")
			token := apptest.Token(b, e.app, apptest.CampWorker)
			runConcurrent(b, 50, 1, func(worker, n int) error {
				body, _ := json.Marshal(visitFields(team, site))
				return send(client, e.url+"/api/collections/camp_visits/records", token, body)
			})
		})
		b.Run(fmt.Sprintf("rest-batch/clients=20/batch=100/rtt=%s", rtt), func(b *testing.B) {
			e := newEnv(b)
			settings := e.app.Settings()
			settings.Batch.Enabled = true
			settings.Batch.MaxRequests = 100
			settings.Batch.Timeout = 30
			if err := e.app.Save(settings); err != nil {
				b.Fatal(err)
			}
			team, site := e.team("camp_outreach"), e.siteOf("camp")
			token := apptest.Token(b, e.app, apptest.CampWorker)
			runConcurrent(b, 20, 100, func(worker, n int) error {
				reqs := make([]map[string]any, n)
				for i := range reqs {
					reqs[i] = map[string]any{"method": "POST", "url": "/api/collections/camp_visits/records", "body": visitFields(team, site)}
				}
				body, _ := json.Marshal(map[string]any{"requests": reqs})
				return send(client, e.url+"/api/batch", token, body)
			})
		})
	}
}

// rawVisit inserts a camp visit as a push of visitFields leaves it, and its
// change row, with plain SQL.
func rawVisit(tx core.App, team, site, user string) error {
	id := uuid.Must(uuid.NewV7()).String()
	now := time.Now().UTC()
	stamp := now.Format("2006-01-02 15:04:05.000Z")
	_, err := tx.NonconcurrentDB().Insert(domain.CampVisits, dbx.Params{
		"id": id, "team": team, "site": site, "visited_at": "2026-11-20 10:00:00.000Z", "households_met": 3,
		"topics": `["health","documents"]`, "needs": "bisogni rilevati durante la visita", "actions": "orientamento ai servizi",
		"workers": "[]", "persons_met": "[]", "version": 1, "created_by": user, "updated_by": user,
		"created": stamp, "updated": stamp,
	}).Execute()
	if err != nil {
		return err
	}
	_, err = tx.NonconcurrentDB().Insert("strada_changes", dbx.Params{
		"collection": domain.CampVisits, "record_id": id, "op": "create", "version": 1, "team": team, "site": site,
		"fields":     `["team","site","visited_at","households_met","topics","needs","actions"]`,
		"actor_user": user, "actor_device": "raw", "mutation_id": uuid.Must(uuid.NewV7()).String(),
		"at": now.Format(time.RFC3339Nano),
	}).Execute()
	return err
}

// latencyTransport delays each request and its answer by half a round
// trip each.
type latencyTransport struct {
	base http.RoundTripper
	rtt  time.Duration
}

func (l *latencyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	time.Sleep(l.rtt / 2)
	resp, err := l.base.RoundTrip(req)
	time.Sleep(l.rtt / 2)
	return resp, err
}

func send(client *http.Client, url, token string, body []byte) error {
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Authorization", token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %d %s", url, resp.StatusCode, data)
	}
	return nil
}

// runConcurrent writes b.N records with workers goroutines, each taking
// chunks of at most chunk records, and reports records/s.
func runConcurrent(b *testing.B, workers, chunk int, write func(worker, n int) error) {
	b.Helper()
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	b.ResetTimer()
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := int(min(left.Add(-int64(chunk))+int64(chunk), int64(chunk)))
				if n <= 0 {
					return
				}
				if err := write(w, n); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
}

// BenchmarkCatchUp measures a device that was offline while 50,000 changes
// happened in its scope pulling them all, with the database holding only
// that, and then with ten times as much out-of-scope data besides; each
// with answers sent plain and in zstd, as the Go client and browsers ask.
// go test ./internal/syncapi -run '^$' -bench BenchmarkCatchUp -benchtime 2x -count 3 -timeout 30m
func BenchmarkCatchUp(b *testing.B) {
	const inScope = 50_000
	for _, outOfScope := range []int{0, 10 * inScope} {
		b.Run(fmt.Sprintf("changes=%d/out-of-scope=%d", inScope, outOfScope), func(b *testing.B) {
			e := newEnv(b)
			c := e.device(apptest.CampWorker)
			c.HTTP = benchHTTP
			c.PageSize = 1000
			if err := c.Pull(context.Background()); err != nil {
				b.Fatal(err)
			}
			cursor, seq := c.Store.Cursor()
			camp, prison := e.team("camp_outreach"), e.team("prison_secretariat")
			// Interleave the two teams' changes, as they happen.
			ratio := outOfScope / inScope
			bulkVisits(b, e, inScope, ratio, camp, prison)
			for _, enc := range []string{"identity", "zstd"} {
				b.Run("encoding="+enc, func(b *testing.B) {
					c.DisableCompression = enc == "identity"
					for range b.N {
						b.StopTimer()
						store := syncclient.NewMemoryStore()
						store.ApplyPage(nil, cursor, seq)
						c.Store = store
						b.StartTimer()
						if err := c.Pull(context.Background()); err != nil {
							b.Fatal(err)
						}
						b.StopTimer()
						if got := len(store.Bases(domain.CampVisits)); got != inScope {
							b.Fatalf("got %d visits, want %d", got, inScope)
						}
						b.StartTimer()
					}
					b.ReportMetric(float64(inScope)*float64(b.N)/b.Elapsed().Seconds(), "changes/s")
				})
			}
		})
	}
}

// bulkVisits writes visits and their change rows directly in SQL, n for
// team and n*ratio for other, interleaved: it builds the state a long
// offline period leaves far faster than one save at a time could.
func bulkVisits(b *testing.B, e *env, n, ratio int, team, other string) {
	b.Helper()
	site := e.siteOf("camp")
	err := e.app.RunInTransaction(func(tx core.App) error {
		insert := func(t string) error {
			id := uuid.Must(uuid.NewV7()).String()
			now := time.Now().UTC()
			_, err := tx.NonconcurrentDB().Insert(domain.CampVisits, dbx.Params{
				"id": id, "team": t, "site": site, "visited_at": "2026-11-20 10:00:00.000Z", "version": 1,
				"needs": "bisogni", "actions": "azioni", "topics": `["health"]`, "workers": "[]", "persons_met": "[]",
				"created": now.Format("2006-01-02 15:04:05.000Z"), "updated": now.Format("2006-01-02 15:04:05.000Z"),
			}).Execute()
			if err != nil {
				return err
			}
			_, err = tx.NonconcurrentDB().Insert("strada_changes", dbx.Params{
				"collection": domain.CampVisits, "record_id": id, "op": "create", "version": 1, "team": t,
				"site": site, "fields": `["site","visited_at","needs","actions","topics"]`, "at": now.Format(time.RFC3339Nano),
			}).Execute()
			return err
		}
		for range n {
			if err := insert(team); err != nil {
				return err
			}
			for range ratio {
				if err := insert(other); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}
