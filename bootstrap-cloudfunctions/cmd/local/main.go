// Command local serves the bootstrap function through the functions
// framework on 127.0.0.1, the way Cloud Functions serves it, so the cloud
// backend can be tried on a developer machine (usually against the
// Firestore emulator):
//
//	FIRESTORE_EMULATOR_HOST=127.0.0.1:8085 GOOGLE_CLOUD_PROJECT=hearsay-dev \
//	PORT=8080 go run ./bootstrap-cloudfunctions/cmd/local
//
// PORT defaults to 8080. FUNCTION_TARGET selects the function (default
// Bootstrap); with it the function answers on every path, as on Cloud
// Functions. Without FIRESTORE_EMULATOR_HOST it talks to the real
// Firestore of the project with application default credentials.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	bootstrapcf "github.com/hearsay-chat/hearsay/bootstrap-cloudfunctions"
)

func main() {
	if err := run(os.Stderr, os.Getenv, os.Setenv); err != nil {
		fmt.Fprintln(os.Stderr, "bootstrap-cloudfunctions/local:", err)
		os.Exit(1)
	}
}

func run(stderr io.Writer, getenv func(string) string, setenv func(string, string) error) error {
	port := getenv("PORT")
	if port == "" {
		port = "8080"
	}
	target := getenv("FUNCTION_TARGET")
	if target == "" {
		// The framework reads FUNCTION_TARGET itself; default it so the
		// function answers on every path, as deployed.
		target = bootstrapcf.FunctionName
		if err := setenv("FUNCTION_TARGET", target); err != nil {
			return fmt.Errorf("set FUNCTION_TARGET: %w", err)
		}
	}
	cfg := bootstrapcf.FunctionConfigFromEnv(getenv)
	if cfg.ProjectID == "" {
		fmt.Fprintf(stderr, "warning: %s is not set; every request will answer 503 until it is\n", bootstrapcf.EnvProject)
	}
	where := "the Firestore emulator at " + getenv("FIRESTORE_EMULATOR_HOST")
	if getenv("FIRESTORE_EMULATOR_HOST") == "" {
		where = "the real Cloud Firestore (application default credentials)"
	}
	fmt.Fprintf(stderr, "serving function %s on http://127.0.0.1:%s (project %q, %s)\n", target, port, cfg.ProjectID, where)
	if err := funcframework.StartHostPort("127.0.0.1", port); err != nil {
		return fmt.Errorf("serve on 127.0.0.1:%s: %w", port, err)
	}
	return nil
}
