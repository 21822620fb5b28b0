package dashboard

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"strada/internal/domain"
)

// ExportHeader is the header row of the monthly export.
var ExportHeader = []string{"Mese", "Team", "Sede", "Tipo sede", "Attività", "Categoria", "Numero"}

// Activities of the export, as the header's Attività column names them.
const (
	ExportVisits     = "Visite al campo"
	ExportHouseholds = "Nuclei familiari incontrati"
	ExportTopics     = "Temi delle visite"
	ExportContacts   = "Colloqui"
	ExportRequests   = "Richieste dei colloqui"
	ExportReferrals  = "Invii ai servizi"
	ExportPersons    = "Persone nuove"
	// ExportTotal is the category of a row that has none.
	ExportTotal = "totale"
	// ExportNoSite names the site of referrals whose person has none.
	ExportNoSite = "(senza sede)"
)

// Italian labels of the enumerations, as the field app shows them.
var labels = map[string]string{
	// visit topics
	"topic.documents": "documenti", "topic.health": "salute", "topic.school": "scuola",
	"topic.work_training": "lavoro e formazione", "topic.housing": "casa", "topic.legal": "questioni legali",
	"topic.basic_needs": "bisogni primari", "topic.other": "altro",
	// contact requests
	"request.identity_documents": "documenti d’identità", "request.residence": "residenza",
	"request.residence_permit": "permesso di soggiorno", "request.pension_benefits": "pensione e sussidi",
	"request.family_contact": "contatti con la famiglia", "request.housing_on_release": "casa all’uscita",
	"request.work_training": "lavoro e formazione", "request.health_addiction": "salute e dipendenze",
	"request.legal_aid": "assistenza legale", "request.other": "altro",
	// settings
	"setting.intra": "intra murario", "setting.extra": "extra murario",
	// service categories
	"category.immigration": "immigrazione", "category.reception": "accoglienza", "category.minors": "minori",
	"category.mediation": "mediazione culturale", "category.detainees": "detenuti ed ex detenuti",
	"category.work_inclusion": "inserimento lavorativo", "category.health_addiction": "salute e dipendenze",
	"category.other": "altro",
	// site kinds
	"site.prison": "istituto penitenziario", "site.camp": "campo", "site.office": "ufficio",
}

func label(prefix, value string) string {
	if l, ok := labels[prefix+"."+value]; ok {
		return l
	}
	return value
}

var monthPattern = regexp.MustCompile(`^[0-9]{4}-(0[1-9]|1[0-2])$`)

// exportRow is one count of the export before labels.
type exportRow struct {
	Team     string `db:"team"`
	Site     string `db:"site"`
	Activity string `db:"activity"`
	Category string `db:"category"`
	N        int    `db:"n"`
}

// activity order of the export rows.
var exportActivities = []string{ExportVisits, ExportHouseholds, ExportTopics, ExportContacts, ExportRequests, ExportReferrals, ExportPersons}

// exportQuery counts the month's work by team, site and category.
func exportQuery(f filters, month window) query {
	b := newBuilder()
	lo, hi := b.arg(recordTime(month.From)), b.arg(recordTime(month.To))
	visits := `FROM ` + domain.CampVisits + ` v WHERE ` + b.workScope(f, "v", true) + ` AND v.visited_at >= ` + lo + ` AND v.visited_at < ` + hi
	contacts := `FROM ` + domain.SecretariatContacts + ` c WHERE ` + b.workScope(f, "c", true) + ` AND c.contacted_at >= ` + lo + ` AND c.contacted_at < ` + hi
	return b.query("monthly export", `
		SELECT v.team, v.site, '`+ExportVisits+`' AS activity, '' AS category, count(*) AS n `+visits+` GROUP BY v.team, v.site
		UNION ALL SELECT v.team, v.site, '`+ExportHouseholds+`', '', coalesce(sum(v.households_met), 0) `+visits+` GROUP BY v.team, v.site
		UNION ALL SELECT v.team, v.site, '`+ExportTopics+`', t.value, count(*) FROM (SELECT v.* `+visits+`) v, json_each(v.topics) t GROUP BY v.team, v.site, t.value
		UNION ALL SELECT c.team, c.site, '`+ExportContacts+`', c.setting, count(*) `+contacts+` GROUP BY c.team, c.site, c.setting
		UNION ALL SELECT c.team, c.site, '`+ExportRequests+`', r.value, count(*) FROM (SELECT c.* `+contacts+`) c, json_each(c.requests) r GROUP BY c.team, c.site, r.value
		UNION ALL SELECT r.team, coalesce(p.site, ''), '`+ExportReferrals+`', s.category, count(*)
			FROM `+domain.Referrals+` r JOIN `+domain.Persons+` p ON p.id = r.person JOIN `+domain.Services+` s ON s.id = r.service
			WHERE `+b.workScope(f, "r", false)+siteIs(b, f, "p")+` AND r.created >= `+lo+` AND r.created < `+hi+`
			GROUP BY r.team, p.site, s.category
		UNION ALL SELECT p.team, p.site, '`+ExportPersons+`', '', count(*) FROM `+domain.Persons+` p
			WHERE `+b.personScope(f, "p")+` AND p.created >= `+lo+` AND p.created < `+hi+` GROUP BY p.team, p.site`)
}

// HandleExport answers GET /api/dashboard/export.csv?month=YYYY-MM: the
// month's counts by site and category, as CSV for Excel in Italian (UTF-8
// with a byte order mark, ";" between fields, CRLF line ends).
func (d *Dashboard) HandleExport(e *core.RequestEvent) error {
	q := e.Request.URL.Query()
	f, er := d.readFilters(e.App, e.Auth, q)
	if er != nil {
		return answer(e, er)
	}
	m := q.Get("month")
	if !monthPattern.MatchString(m) {
		return answer(e, &Error{Status: http.StatusBadRequest, Code: CodeInvalidMonth, Field: "month", Message: "month is YYYY-MM."})
	}
	first, err := time.ParseInLocation("2006-01", m, rome)
	if err != nil {
		return answer(e, &Error{Status: http.StatusBadRequest, Code: CodeInvalidMonth, Field: "month", Message: "month is YYYY-MM."})
	}
	body, err := exportCSV(e.App, f, m, window{first, first.AddDate(0, 1, 0)})
	if err != nil {
		d.logger.Error("dashboard export failed", "user", e.Auth.Id, "month", m, "error", err)
		return answer(e, internal(err))
	}
	h := e.Response.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="strada-`+m+`.csv"`)
	h.Set("Cache-Control", "no-store")
	return e.Blob(http.StatusOK, "text/csv; charset=utf-8", body)
}

// bom is UTF-8's byte order mark, which tells Excel the file's encoding.
const bom = "\uFEFF"

func exportCSV(app core.App, f filters, month string, w window) ([]byte, error) {
	teams, sites, _, err := directory(app, f)
	if err != nil {
		return nil, err
	}
	var rows []exportRow
	if err := exportQuery(f, w).all(app, &rows); err != nil {
		return nil, err
	}
	teamName := map[string]string{}
	for _, t := range teams {
		teamName[t.ID] = t.Name
	}
	site := map[string]SiteRef{}
	for _, s := range sites {
		site[s.ID] = s
	}
	type line struct {
		team, site, kind string
		activity         int
		category         int
		cells            []string
	}
	var lines []line
	for _, r := range rows {
		if r.N == 0 {
			continue
		}
		s, ok := site[r.Site]
		siteName, kind := s.Name, label("site", s.Kind)
		if !ok {
			siteName, kind = ExportNoSite, ""
		}
		category, order := exportCategory(r.Activity, r.Category)
		lines = append(lines, line{
			team: teamName[r.Team], site: siteName, activity: slices.Index(exportActivities, r.Activity), category: order,
			cells: []string{month, teamName[r.Team], siteName, kind, r.Activity, category, strconv.Itoa(r.N)},
		})
	}
	slices.SortFunc(lines, func(a, b line) int {
		for _, c := range []int{strings.Compare(a.team, b.team), strings.Compare(a.site, b.site), a.activity - b.activity, a.category - b.category} {
			if c != 0 {
				return c
			}
		}
		return strings.Compare(a.cells[5], b.cells[5])
	})
	var buf bytes.Buffer
	buf.WriteString(bom)
	cw := csv.NewWriter(&buf)
	cw.Comma = ';'
	cw.UseCRLF = true
	if err := cw.Write(ExportHeader); err != nil {
		return nil, fmt.Errorf("write export header: %w", err)
	}
	for _, l := range lines {
		for i := 1; i <= 5; i++ {
			l.cells[i] = inert(l.cells[i])
		}
		if err := cw.Write(l.cells); err != nil {
			return nil, fmt.Errorf("write export row: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return nil, fmt.Errorf("write export: %w", err)
	}
	return buf.Bytes(), nil
}

// exportCategory returns the label of a category and its place in its
// enumeration.
func exportCategory(activity, value string) (string, int) {
	switch activity {
	case ExportTopics:
		return label("topic", value), slices.Index(domain.VisitTopics, value)
	case ExportContacts:
		return label("setting", value), slices.Index(domain.Settings, value)
	case ExportRequests:
		return label("request", value), slices.Index(domain.ContactRequests, value)
	case ExportReferrals:
		return label("category", value), slices.Index(domain.ServiceCategories, value)
	}
	return ExportTotal, 0
}

// inert keeps a text cell from being read as a formula by a spreadsheet.
func inert(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
