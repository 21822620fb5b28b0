package syncapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"strada/internal/apptest"
	"strada/internal/compress"
	"strada/internal/domain"
	"strada/internal/syncapi"
	"strada/internal/syncclient"
)

// rawDo sends body with the given request headers through a transport that
// leaves answers as they came (no transparent gzip), and returns the
// status, the header and the body as sent.
func rawDo(t *testing.T, method, url string, c *syncclient.Client, headers map[string]string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", c.Token)
	req.Header.Set(syncapi.DeviceHeader, c.DeviceID)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, data
}

func decodeAnswer(t *testing.T, h http.Header, data []byte) []byte {
	t.Helper()
	coding := h.Get("Content-Encoding")
	if coding == "" {
		return data
	}
	out, err := compress.Decode(coding, data, 64<<20)
	if err != nil {
		t.Fatalf("decode %s answer: %v", coding, err)
	}
	return out
}

// TestPullAnswerEncoding pulls the same snapshot page in each coding: the
// answer comes in the coding negotiated, with Vary and a Content-Length,
// and decodes to the same changes; a small error answer stays plain JSON.
func TestPullAnswerEncoding(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.device(apptest.CampWorker)
	url := e.url + "/api/sync/pull?limit=1000"
	cases := []struct {
		name, accept, want string
	}{
		{"none", "", ""},
		{"identity", "identity", ""},
		{"gzip", "gzip", compress.Gzip},
		{"zstd", "zstd", compress.Zstd},
		{"browser", "gzip, deflate, br, zstd", compress.Zstd},
		{"gzip preferred by q", "zstd;q=0.1, gzip", compress.Gzip},
	}
	var plain syncapi.PullResponse
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, h, data := rawDo(t, http.MethodGet, url, c, map[string]string{"Accept-Encoding": tc.accept}, nil)
			if status != 200 {
				t.Fatalf("got %d %s, want 200", status, data)
			}
			if got := h.Get("Content-Encoding"); got != tc.want {
				t.Errorf("got Content-Encoding %q, want %q", got, tc.want)
			}
			if got := h.Get("Vary"); got != "Accept-Encoding" {
				t.Errorf("got Vary %q, want Accept-Encoding", got)
			}
			if h.Get("Content-Length") == "" {
				t.Error("got no Content-Length, want one")
			}
			var page syncapi.PullResponse
			if err := json.Unmarshal(decodeAnswer(t, h, data), &page); err != nil {
				t.Fatalf("decode page: %v", err)
			}
			if len(page.Changes) == 0 {
				t.Fatal("got an empty snapshot page, want the demo data")
			}
			if plain.Changes == nil {
				plain = page
				return
			}
			if got, want := len(page.Changes), len(plain.Changes); got != want {
				t.Errorf("got %d changes, want %d as uncompressed", got, want)
			}
			if tc.want != "" && len(data)*3 > len(decodeAnswer(t, h, data)) {
				t.Errorf("got %d bytes for %d of JSON, want at least 3× fewer", len(data), len(decodeAnswer(t, h, data)))
			}
		})
	}
	t.Run("error answer", func(t *testing.T) {
		status, h, data := rawDo(t, http.MethodGet, e.url+"/api/sync/pull?limit=0", c, map[string]string{"Accept-Encoding": "gzip"}, nil)
		if status != 400 || h.Get("Content-Encoding") != "" {
			t.Fatalf("got %d with Content-Encoding %q, want 400 plain", status, h.Get("Content-Encoding"))
		}
		if got := oneObject(t, data); got.Code != "invalid_limit" {
			t.Errorf("got code %q, want invalid_limit", got.Code)
		}
	})
}

func pushBody(t *testing.T, team, site string, n int, pad int) []byte {
	t.Helper()
	muts := make([]map[string]any, n)
	for i := range muts {
		f := visitFields(team, site)
		f["needs"] = strings.Repeat("bisogni rilevati ", pad/17+1)[:pad]
		muts[i] = map[string]any{"id": newUUID(), "collection": domain.CampVisits, "recordId": newID(),
			"op": "upsert", "baseVersion": 0, "fields": f}
	}
	b, err := json.Marshal(map[string]any{"mutations": muts})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func packed(t *testing.T, coding string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := compress.Encode(&b, coding, data); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestPushBodyEncoding sends pushes with each Content-Encoding: a
// compressed push applies like a plain one; one over 1 MiB once
// decompressed, a corrupt one and one in an unknown coding are refused
// with their own status and code, and leave nothing written.
func TestPushBodyEncoding(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.device(apptest.CampWorker)
	team, site := e.team("camp_outreach"), e.siteOf("camp")
	small := pushBody(t, team, site, 50, 100)
	// 400 mutations of 3 KB of repetitive text: 1.2 MB of JSON that
	// compresses below 64 KB.
	huge := pushBody(t, team, site, 400, 3000)
	if len(huge) <= int(syncapi.MaxPushBytes) {
		t.Fatalf("got a push of %d bytes, want one over %d", len(huge), syncapi.MaxPushBytes)
	}
	gzHuge := packed(t, compress.Gzip, huge)
	bombMember := packed(t, compress.Gzip, make([]byte, 1<<20))
	cases := []struct {
		name     string
		encoding string
		body     []byte
		status   int
		code     string
		applied  int
	}{
		{"gzip", "gzip", packed(t, compress.Gzip, small), 200, "", 50},
		{"zstd", "zstd", packed(t, compress.Zstd, pushBody(t, team, site, 50, 100)), 200, "", 50},
		{"over 1 MiB once decompressed", "gzip", gzHuge, 413, "body_too_large", 0},
		{"zip bomb", "gzip", bytes.Repeat(bombMember, 200), 413, "body_too_large", 0},
		{"corrupt gzip", "gzip", gzHuge[:len(gzHuge)/2], 400, compress.CodeCorruptBody, 0},
		{"plain JSON labelled gzip", "gzip", pushBody(t, team, site, 5, 10), 400, compress.CodeCorruptBody, 0},
		{"brotli", "br", pushBody(t, team, site, 5, 10), 415, compress.CodeUnsupportedEncoding, 0},
		{"gzip twice", "gzip, gzip", packed(t, compress.Gzip, packed(t, compress.Gzip, small)), 415, compress.CodeUnsupportedEncoding, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, seq := e.count(domain.CampVisits), e.lastSeq()
			status, h, data := rawDo(t, http.MethodPost, e.url+"/api/sync/push", c,
				map[string]string{"Content-Encoding": tc.encoding, "Accept-Encoding": "gzip"}, tc.body)
			if status != tc.status {
				t.Fatalf("got %d %s, want %d", status, decodeAnswer(t, h, data), tc.status)
			}
			body := decodeAnswer(t, h, data)
			if tc.code != "" {
				if got := oneObject(t, body); got.Code != tc.code {
					t.Errorf("got code %q, want %q", got.Code, tc.code)
				}
			} else {
				var resp struct{ Results []syncclient.Result }
				if err := json.Unmarshal(body, &resp); err != nil {
					t.Fatal(err)
				}
				if len(resp.Results) != tc.applied {
					t.Errorf("got %d results, want %d", len(resp.Results), tc.applied)
				}
				for _, r := range resp.Results {
					if r.Status != syncapi.StatusApplied {
						t.Fatalf("got %+v, want applied", r)
					}
				}
				if h.Get("Content-Encoding") != compress.Gzip {
					t.Errorf("got the answer of %d results with Content-Encoding %q, want gzip", len(resp.Results), h.Get("Content-Encoding"))
				}
			}
			if got, want := e.count(domain.CampVisits), before+int64(tc.applied); got != want {
				t.Errorf("got %d visits, want %d", got, want)
			}
			if tc.applied == 0 && e.lastSeq() != seq {
				t.Errorf("got change log at %d, want %d unchanged", e.lastSeq(), seq)
			}
		})
	}
}

// TestClientCompresses syncs through the Go client, which gzips its pushes
// and asks for compressed answers, and through one with compression off:
// both converge on the same records.
func TestClientCompresses(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	team, site := e.team("camp_outreach"), e.siteOf("camp")
	on, off := e.device(apptest.CampWorker), e.device(apptest.CampWorker)
	off.DisableCompression = true
	for range 30 {
		on.Upsert(domain.CampVisits, newID(), visitFields(team, site))
		off.Upsert(domain.CampVisits, newID(), visitFields(team, site))
	}
	ctx := context.Background()
	for _, c := range []*syncclient.Client{on, off, on} {
		if _, err := c.Sync(ctx); err != nil {
			t.Fatalf("sync: %v", err)
		}
	}
	if got, want := len(on.ViewAll(domain.CampVisits)), len(off.ViewAll(domain.CampVisits)); got != want || got < 60 {
		t.Errorf("got %d visits on the compressing device, want %d as on the other, at least the 60 pushed", got, want)
	}
	sOn, sOff := on.Stats(), off.Stats()
	if sOn.SentBytes >= sOn.SentRawBytes || sOn.ReceivedBytes >= sOn.ReceivedRawBytes {
		t.Errorf("got %+v on the compressing device, want fewer bytes sent and received than their JSON", sOn)
	}
	if sOff.SentBytes != sOff.SentRawBytes || sOff.ReceivedBytes != sOff.ReceivedRawBytes {
		t.Errorf("got %+v with compression off, want bytes equal to their JSON", sOff)
	}
}
