package main

import (
	"os"
	"testing"
)

// TestDevModeOnlyWhenAsked builds the app as `serve` does. The test binary
// runs from the temporary directory, as a `go run` build does, which alone
// must not turn on development mode (it prints every SQL statement with its
// values, token secrets included).
func TestDevModeOnlyWhenAsked(t *testing.T) {
	args := os.Args
	t.Cleanup(func() { os.Args = args })
	cases := []struct {
		args []string
		want bool
	}{
		{args: []string{"serve"}, want: false},
		{args: []string{"serve", "--demo"}, want: false},
		{args: []string{"serve", "--dev"}, want: true},
		{args: []string{"serve", "--dev=false"}, want: false},
	}
	for _, c := range cases {
		os.Args = append([]string{args[0]}, c.args...)
		if got := newApp().IsDev(); got != c.want {
			t.Errorf("%v: got dev mode %v, want %v", c.args, got, c.want)
		}
	}
}
