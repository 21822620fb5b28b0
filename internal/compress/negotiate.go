// Package compress is the content coding of the sync API's HTTP bodies:
// it negotiates the coding of an answer from Accept-Encoding (RFC 9110
// §12.5.3, with q-values) and compresses it, and it reads request bodies
// sent with Content-Encoding under a size limit that applies after
// decompression.
package compress

import (
	"strconv"
	"strings"
)

// Content codings Strada speaks.
const (
	Zstd     = "zstd"
	Gzip     = "gzip"
	Identity = "identity"
)

// preference is the server's order among codings the client weighs the
// same: zstd compresses sync answers a little better than gzip at a
// fraction of the CPU.
var preference = []string{Zstd, Gzip}

// Negotiate returns the coding to answer with for the Accept-Encoding
// header values given: Zstd, Gzip, or "" for none. A missing or empty
// header means identity only. Among the codings with the highest non-zero
// q-value the server's preference decides; "*" stands for every coding not
// named, and "x-gzip" for gzip. When the client refuses identity and
// accepts nothing Strada speaks, the answer is still sent uncompressed
// (RFC 9110 allows it), so that the client gets a readable error rather
// than a 406 it cannot act on.
func Negotiate(header []string) string {
	named := map[string]float64{}
	star, hasStar := 0.0, false
	for _, value := range header {
		for _, item := range strings.Split(value, ",") {
			coding, q, ok := parseItem(item)
			if !ok {
				continue
			}
			if coding == "*" {
				star, hasStar = q, true
				continue
			}
			if old, seen := named[coding]; !seen || q > old {
				named[coding] = q
			}
		}
	}
	best, bestQ := "", 0.0
	for _, coding := range preference {
		q, ok := named[coding]
		if !ok && hasStar {
			q, ok = star, true
		}
		if ok && q > bestQ {
			best, bestQ = coding, q
		}
	}
	return best
}

// parseItem reads one element of Accept-Encoding: a coding and its
// q-value (1 when absent). A malformed element is skipped.
func parseItem(item string) (string, float64, bool) {
	coding, params, _ := strings.Cut(item, ";")
	coding = strings.ToLower(strings.TrimSpace(coding))
	if coding == "" {
		return "", 0, false
	}
	if coding == "x-gzip" {
		coding = Gzip
	}
	q := 1.0
	for _, p := range strings.Split(params, ";") {
		name, value, found := strings.Cut(strings.TrimSpace(p), "=")
		if !found || !strings.EqualFold(strings.TrimSpace(name), "q") {
			continue
		}
		v, ok := parseQ(strings.TrimSpace(value))
		if !ok {
			return "", 0, false
		}
		q = v
	}
	return coding, q, true
}

// parseQ reads a qvalue: "0" or "1", or a decimal of at most three places
// from 0 to 1 (RFC 9110 §12.4.2).
func parseQ(s string) (float64, bool) {
	if s == "" || len(s) > 5 || (s[0] != '0' && s[0] != '1') {
		return 0, false
	}
	if len(s) > 1 && s[1] != '.' {
		return 0, false
	}
	for _, c := range s[min(2, len(s)):] {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	q, err := strconv.ParseFloat(s, 64)
	if err != nil || q > 1 {
		return 0, false
	}
	return q, true
}
