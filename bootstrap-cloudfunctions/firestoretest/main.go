package firestoretest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
)

// The emulator a test package shares. It starts on the first Require, so
// runs that need no emulator (unit tests only, fuzz workers) start none,
// and RunMain stops it after the tests.
var (
	startOnce sync.Once
	shared    *Emulator
	sharedErr error
	used      atomic.Int64
)

// RunMain runs the package's tests and then stops the shared emulator if
// one started; call it from TestMain as os.Exit(firestoretest.RunMain(m)).
//
// After the tests it prints the line CI greps for to prove the Firestore
// leg ran: "firestore emulator leg: N tests ran against HOST".
func RunMain(m *testing.M) int {
	code := m.Run()
	if shared != nil {
		shared.Stop()
		fmt.Printf("firestore emulator leg: %d tests ran against %s\n", used.Load(), shared.Host)
	}
	return code
}

func startShared() {
	shared, sharedErr = Start(context.Background())
	if sharedErr != nil {
		return
	}
	// Every Firestore client of the test process (including the
	// function's lazily created one) talks to the emulator.
	if err := os.Setenv("FIRESTORE_EMULATOR_HOST", shared.Host); err != nil {
		shared.Stop()
		shared, sharedErr = nil, err
		return
	}
	fmt.Printf("firestore emulator: started on %s\n", shared.Host)
}

// Require returns the shared emulator, starting it on first use (and
// setting FIRESTORE_EMULATOR_HOST for the whole test process). When it
// cannot start, the test fails with the reason, or skips when EnvSkip is
// 1. Only call it from tests of a package whose TestMain uses RunMain.
func Require(t testing.TB) *Emulator {
	t.Helper()
	startOnce.Do(startShared)
	if shared == nil {
		if Skip() {
			t.Skipf("firestore emulator unavailable, skipped (%s=1): %v", EnvSkip, sharedErr)
		}
		t.Fatalf("firestore emulator unavailable (set %s=1 to skip): %v", EnvSkip, sharedErr)
	}
	used.Add(1)
	t.Logf("firestore: running against the emulator at %s", shared.Host)
	return shared
}
