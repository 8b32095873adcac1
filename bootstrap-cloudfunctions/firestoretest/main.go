package firestoretest

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
)

// The emulator a test package shares, started by RunMain.
var (
	shared    *Emulator
	sharedErr error
	used      atomic.Int64
)

// RunMain starts the shared emulator, runs the package's tests and stops
// it; call it from TestMain as os.Exit(firestoretest.RunMain(m)). A start
// failure does not stop here: every test that calls Require fails with it
// (or skips, when EnvSkip is 1), so the failure is visible per test.
//
// After the tests it prints one line that CI greps for to prove the
// Firestore leg ran: "firestore emulator leg: N tests ran against HOST".
func RunMain(m *testing.M) int {
	shared, sharedErr = Start(context.Background())
	if sharedErr == nil {
		// Every Firestore client of the test process (including the
		// function's lazily created one) talks to the emulator.
		if err := os.Setenv("FIRESTORE_EMULATOR_HOST", shared.Host); err != nil {
			sharedErr = err
		}
		fmt.Printf("firestore emulator: started on %s\n", shared.Host)
	}
	code := m.Run()
	if shared != nil {
		shared.Stop()
		if n := used.Load(); n > 0 {
			fmt.Printf("firestore emulator leg: %d tests ran against %s\n", n, shared.Host)
		}
	}
	return code
}

// Require returns the shared emulator. When it could not start, the test
// fails with the reason, or skips when EnvSkip is 1. RunMain has set
// FIRESTORE_EMULATOR_HOST for the whole test process.
func Require(t testing.TB) *Emulator {
	t.Helper()
	if shared == nil {
		err := sharedErr
		if err == nil {
			err = fmt.Errorf("firestoretest.RunMain was not called from TestMain")
		}
		if Skip() {
			t.Skipf("firestore emulator unavailable, skipped (%s=1): %v", EnvSkip, err)
		}
		t.Fatalf("firestore emulator unavailable: %v", err)
	}
	used.Add(1)
	t.Logf("firestore: running against the emulator at %s", shared.Host)
	return shared
}
