package accesslog_test

import (
	"slices"
	"testing"

	"strada/internal/accesslog"
	"strada/internal/apptest"
	"strada/internal/domain"
)

// BenchmarkWrite measures the rows of one full pull page: 1,000 entries in
// one statement, into a log that grows as the benchmark runs.
// go test ./internal/accesslog -run '^$' -bench BenchmarkWrite -benchtime 200x -count 5
func BenchmarkWrite(b *testing.B) {
	app := apptest.New(b)
	person := records(b, app, domain.Persons, apptest.Team(b, app, "camp_outreach"))[0]
	en, _ := accesslog.EntryOf(person)
	page := slices.Repeat([]accesslog.Entry{en}, 1000)
	who := accesslog.Reader{User: "u", Device: "d"}
	b.ResetTimer()
	for range b.N {
		if err := accesslog.Write(app, who, accesslog.ActionDownload, page); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(page))*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
