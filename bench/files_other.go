//go:build !unix

package bench

// Outside Unix the bench neither raises nor reports the open-file limit.

func raiseFileLimit() (uint64, error) { return 0, nil }

func fileLimit() uint64 { return 0 }

func openFiles() int { return -1 }
