//go:build !race

package events_test

const raceDetector = false
