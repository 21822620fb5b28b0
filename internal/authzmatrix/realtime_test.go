package authzmatrix_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/pocketbase/pocketbase/tools/subscriptions"

	"strada/internal/domain"
)

// sentinel is the name of the message the matrix sends itself through
// PocketBase's broker after its writes: a client receives messages in the
// order they were sent, so every event of the writes came before it.
const sentinel = "zq-sentinel"

// realtime connects to PocketBase's realtime API, subscribes as the cell's
// account to every collection and to each fixture of the cell's team,
// changes every fixture of that team, and returns the status of the
// subscription and every event received.
func realtime(s *server, c cell) (int, string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // a guard against a hang, not a measure
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/api/realtime", nil)
	if err != nil {
		s.t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("connect realtime: %v", err)
	}
	defer res.Body.Close()
	events := make(chan string)
	go func() {
		defer close(events)
		r := bufio.NewReader(res.Body)
		for {
			ev, err := readEvent(r)
			if err != nil {
				return
			}
			select {
			case events <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	first := <-events
	var connect struct {
		ClientID string `json:"clientId"`
	}
	decodeEventData(s, first, &connect)

	var topics []string
	for _, p := range policies {
		topics = append(topics, p.name+"/*")
		if id := s.fixture[p.name][c.team]; id != "" {
			topics = append(topics, p.name+"/"+id)
		}
	}
	sub, _ := json.Marshal(map[string]any{"clientId": connect.ClientID, "subscriptions": topics})
	status, body := s.send(c.as, request{method: http.MethodPost, path: "/api/realtime", body: string(sub)})
	if status >= 300 {
		return status, body
	}

	received := make(chan string)
	go func() {
		var b strings.Builder
		for ev := range events {
			b.WriteString(ev)
			if strings.Contains(ev, "event:"+sentinel) {
				break
			}
		}
		received <- b.String()
	}()
	s.touchFixtures(c.team)
	client, err := s.app.SubscriptionsBroker().ClientById(connect.ClientID)
	if err != nil {
		s.t.Fatalf("find realtime client: %v", err)
	}
	client.Send(subscriptions.Message{Name: sentinel, Data: []byte(`{}`)})
	return status, body + (<-received)
}

func decodeEventData(s *server, ev string, out any) {
	s.t.Helper()
	for _, line := range strings.Split(ev, "\n") {
		if data, ok := strings.CutPrefix(line, "data:"); ok {
			if err := json.Unmarshal([]byte(data), out); err != nil {
				s.t.Fatalf("decode event %q: %v", ev, err)
			}
			return
		}
	}
	s.t.Fatalf("event %q has no data", ev)
}

// touchFixtures changes every fixture of team as the server, so that each
// sends a realtime event to whoever may read it.
func (s *server) touchFixtures(team string) {
	s.t.Helper()
	change := map[string]func() (string, any){
		domain.Persons:             func() (string, any) { return "languages", s.unique("lingua ") },
		domain.CampVisits:          func() (string, any) { return "households_met", s.seq%50 + 1 },
		domain.SecretariatContacts: func() (string, any) { return "next_steps", s.unique("passo ") },
		domain.Referrals:           func() (string, any) { return "due_on", "2026-12-01" },
		domain.ReferralEvents:      func() (string, any) { return "note", marker(domain.ReferralEvents, team) + s.unique(" ") },
		domain.SyncConflicts:       func() (string, any) { return "kept_device", s.unique("d") },
		domain.Erasures:            func() (string, any) { return "records", s.seq },
		domain.Devices:             func() (string, any) { return "platform", s.unique("android ") },
		domain.Users:               func() (string, any) { return "locale", "it" },
	}
	for _, p := range policies {
		id := s.fixture[p.name][team]
		if id == "" {
			continue
		}
		r, err := s.app.FindRecordById(p.name, id)
		if err != nil {
			s.t.Fatalf("find %s %s: %v", p.name, id, err)
		}
		if f, ok := change[p.name]; ok {
			field, value := f()
			r.Set(field, value)
		} else {
			r.Set("device", s.unique("d"))
		}
		if err := s.app.Save(r); err != nil {
			s.t.Fatalf("change %s %s: %v", p.name, id, err)
		}
	}
}

// dashboardStream asks for a stream ticket as the cell's account and opens
// the dashboard stream with it (without one when the ticket is refused),
// returning the stream's status and first event.
func dashboardStream(s *server, c cell) (int, string) {
	s.t.Helper()
	status, body := s.send(c.as, request{method: http.MethodPost, path: "/api/dashboard/stream-ticket"})
	path := "/api/dashboard/stream"
	if status == http.StatusOK {
		var ticket struct {
			Ticket string `json:"ticket"`
		}
		if err := json.NewDecoder(strings.NewReader(body)).Decode(&ticket); err != nil && err != io.EOF {
			s.t.Fatalf("decode ticket %q: %v", body, err)
		}
		path += "?ticket=" + ticket.Ticket
	}
	return s.send(c.as, request{method: http.MethodGet, path: path, stream: true, anonymous: true})
}
