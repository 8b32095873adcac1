package main

import (
	"io"
	"os"
)

// ioStreams is where every command reads and writes, so that tests can
// replace the process's streams (cli/cli's iostreams).
type ioStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// Getenv reads the environment; tests pass a map.
	Getenv func(string) string
}

func defaultIO() *ioStreams {
	return &ioStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr, Getenv: os.Getenv}
}
