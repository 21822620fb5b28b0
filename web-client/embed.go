// Package webclient embeds the built web client (dist/) so that the server
// binary serves it without Node.js on the machine.
package webclient

import (
	"embed"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

// DistFS returns the built web client.
func DistFS() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // dist is embedded at build time; a failure is a build defect
	}
	return sub
}
