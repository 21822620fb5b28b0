package demo

// Service is an entry of the territorial service directory.
type Service struct {
	Name, Organisation, Category, Address, Phone, Email, Hours, Languages, Notes string
	Active                                                                       bool
}

// Directory is the service directory taken from the source document in
// shared/seed (Roma Capitale, "servizi ai migranti"): real names, addresses,
// phone numbers and opening hours.
var Directory = []Service{
	{
		Name:         "Ufficio Immigrazione – Centro Cittadino per le Migrazioni, l'Asilo e l'Integrazione Sociale",
		Organisation: "Roma Capitale – Dipartimento Promozione dei Servizi Sociali e della Salute",
		Category:     "immigration",
		Address:      "Via Assisi, 39A – Roma",
		Hours:        "lunedì e giovedì 9:00–11:00; mercoledì 15:00–17:00",
		Notes: "Servizi socio-assistenziali, anche residenziali, e di inserimento socio-lavorativo per cittadini " +
			"immigrati, richiedenti asilo e rifugiati.",
		Active: true,
	},
	{
		Name:         "Centri di accoglienza per immigrati, richiedenti asilo e rifugiati",
		Organisation: "Roma Capitale – Ufficio Immigrazione",
		Category:     "reception",
		Address:      "Via Assisi, 39A – Roma (richiesta all'Ufficio Immigrazione)",
		Hours:        "lunedì e giovedì 9:00–11:00; mercoledì 15:00–17:00",
		Notes: "22 centri del privato sociale convenzionati. La richiesta si presenta all'Ufficio Immigrazione; " +
			"serve un permesso di soggiorno per richiesta di asilo o per lavoro.",
		Active: true,
	},
	{
		Name:         "Centri Interculturali per minori",
		Organisation: "Roma Capitale – Ufficio Immigrazione",
		Category:     "minors",
		Address:      "Via Assisi, 39A – Roma (informazioni all'Ufficio Immigrazione)",
		Hours:        "lunedì e giovedì 9:00–11:00; mercoledì 15:00–17:00",
		Notes: "22 centri del privato sociale per minori di 0–6 e 6–18 anni, immigrati e italiani residenti " +
			"sul territorio cittadino.",
		Active: true,
	},
	{
		Name:         "Servizio di mediazione interculturale",
		Organisation: "Roma Capitale – Ufficio Immigrazione, in convenzione con il privato sociale",
		Category:     "mediation",
		Address:      "Via Assisi, 39A – Roma",
		Hours:        "lunedì e giovedì 9:00–11:00; mercoledì 15:00–17:00",
		Notes:        "Facilita le relazioni tra cittadini immigrati e servizi dell'Amministrazione comunale.",
		Active:       true,
	},
	{
		Name:         "Assistenza agli emigrati italiani rimpatriati",
		Organisation: "Roma Capitale – Ufficio Immigrazione",
		Category:     "other",
		Address:      "Via Assisi, 39A – Roma",
		Hours:        "lunedì e giovedì 9:00–11:00; mercoledì 15:00–17:00",
		Notes:        "Assistenza economica agli italiani rimpatriati dall'estero.",
		Active:       true,
	},
	{
		Name:         "Ufficio detenuti ed ex detenuti",
		Organisation: "Roma Capitale",
		Category:     "detainees",
		Phone:        "06 67105360 – 5278",
		Notes: "Progetti socio-lavorativi e accoglienza in case famiglia per i detenuti degli Istituti di Pena " +
			"di Roma e per gli ex detenuti; orientamento alla rete dei servizi territoriali.",
		Active: true,
	},
	{
		Name:         "Segretariato Sociale intra ed extra murario",
		Organisation: "Coop. P.I.D. – Pronto Intervento Disagio, per conto di Roma Capitale",
		Category:     "detainees",
		Address:      "Via della Mercede, 52 – Roma",
		Phone:        "06 669190417",
		Hours:        "lunedì e giovedì 9:00–17:30; negli altri giorni, per emergenze, su appuntamento",
		Active:       true,
	},
	{
		Name:         "La Fabbrica dei Mestieri",
		Organisation: "Programma Integra",
		Category:     "work_inclusion",
		Notes: "Progetto sperimentale di inserimento lavorativo per cittadini rom rumeni adulti (18–35 anni) " +
			"dei campi di Via Candoni e Via di Salone; corsi conclusi il 6 novembre 2009. www.programmaintegra.it",
		Active: false,
	},
	{
		Name:         "Programma Retis",
		Organisation: "Roma Capitale – Assessorato Promozione dei Servizi Sociali e della Salute",
		Category:     "work_inclusion",
		Email:        "info@programmaretis.it",
		Notes: "Inclusione sociale e lavorativa di persone vulnerabili (tra cui ex detenuti, minoranze etniche, " +
			"lavoratori migranti, persone con dipendenze): formazione, borse lavoro, microcredito. www.programmaretis.it",
		Active: true,
	},
}
