//go:build !race

package chat_test

// raceEnabled: see race_on_test.go.
const raceEnabled = false
