//go:build race

package events_test

// raceDetector is true when the tests run with -race, which makes every
// write several times slower.
const raceDetector = true
