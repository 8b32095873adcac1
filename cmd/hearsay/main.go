// Command hearsay is a peer-to-peer chat for the terminal. See README.md.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], defaultIO()))
}
