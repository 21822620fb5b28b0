package dashboard

import (
	"net/url"
	"time"
	_ "time/tzdata" // Europe/Rome wherever the binary runs
)

// rome is the time zone of every day, week and month of the dashboard.
var rome = mustLoad("Europe/Rome")

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic("dashboard: load time zone " + name + ": " + err.Error())
	}
	return loc
}

// Periods a request may name.
const (
	PeriodToday  = "today"
	PeriodWeek   = "week"
	PeriodMonth  = "month"
	PeriodCustom = "custom"
	// maxCustomDays bounds a from/to period.
	maxCustomDays = 366
)

// window is a half-open span of time [From, To), whole days in Rome.
type window struct{ From, To time.Time }

// period is the current window and the one before it, of the same kind.
type period struct {
	Kind              string
	Current, Previous window
}

func dayStart(t time.Time) time.Time {
	t = t.In(rome)
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, rome)
}

// addDays moves a day start by n calendar days in Rome (23 or 25 hours
// across a change of the clocks).
func addDays(t time.Time, n int) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day()+n, 0, 0, 0, 0, rome)
}

// readPeriod reads period=today|week|month (default week) or from/to
// (YYYY-MM-DD, both inclusive) relative to now.
func readPeriod(q url.Values, now time.Time) (period, *Error) {
	from, to := q.Get("from"), q.Get("to")
	if from != "" || to != "" {
		if q.Get("period") != "" && q.Get("period") != PeriodCustom {
			return period{}, invalid("period", "Give either period or from and to.")
		}
		f, err := time.ParseInLocation(time.DateOnly, from, rome)
		if err != nil {
			return period{}, invalid("from", "from must be a date, YYYY-MM-DD.")
		}
		t, err := time.ParseInLocation(time.DateOnly, to, rome)
		if err != nil {
			return period{}, invalid("to", "to must be a date, YYYY-MM-DD.")
		}
		if t.Before(f) {
			return period{}, invalid("to", "to must not be before from.")
		}
		days := int(t.Sub(f).Hours()/24+0.5) + 1
		if days > maxCustomDays {
			return period{}, invalid("to", "A period is at most 366 days.")
		}
		cur := window{f, addDays(t, 1)}
		return period{Kind: PeriodCustom, Current: cur, Previous: window{addDays(f, -days), f}}, nil
	}
	today := dayStart(now)
	switch q.Get("period") {
	case PeriodToday:
		return period{Kind: PeriodToday, Current: window{today, addDays(today, 1)}, Previous: window{addDays(today, -1), today}}, nil
	case PeriodWeek, "":
		monday := addDays(today, -((int(today.Weekday()) + 6) % 7))
		return period{Kind: PeriodWeek, Current: window{monday, addDays(monday, 7)}, Previous: window{addDays(monday, -7), monday}}, nil
	case PeriodMonth:
		first := time.Date(today.Year(), today.Month(), 1, 0, 0, 0, 0, rome)
		return period{Kind: PeriodMonth, Current: window{first, first.AddDate(0, 1, 0)}, Previous: window{first.AddDate(0, -1, 0), first}}, nil
	}
	return period{}, invalid("period", "period is today, week or month.")
}

// weekStart is the Monday of t's week in Rome.
func weekStart(t time.Time) time.Time {
	d := dayStart(t)
	return addDays(d, -((int(d.Weekday()) + 6) % 7))
}

// recordTime formats t as PocketBase stores dates, for comparisons with
// date fields: fixed width, so text order is time order.
func recordTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000Z") }

// logTime formats t for comparisons with the change log's commit times
// (RFC 3339 with as many fraction digits as needed): without the fraction
// and zone, the bound sorts before every time of its second.
func logTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05") }

// dateOf is the Rome date of t.
func dateOf(t time.Time) string { return t.In(rome).Format(time.DateOnly) }

// PeriodInfo describes the period of an answer; dates are inclusive.
type PeriodInfo struct {
	Kind         string `json:"kind"`
	From         string `json:"from"`
	To           string `json:"to"`
	PreviousFrom string `json:"previousFrom"`
	PreviousTo   string `json:"previousTo"`
	TimeZone     string `json:"timeZone"`
}

func (p period) info() PeriodInfo {
	last := func(w window) string { return dateOf(w.To.Add(-time.Hour * 12)) }
	return PeriodInfo{
		Kind: p.Kind, From: dateOf(p.Current.From), To: last(p.Current),
		PreviousFrom: dateOf(p.Previous.From), PreviousTo: last(p.Previous), TimeZone: rome.String(),
	}
}
