package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	functions "cloud.google.com/go/functions/apiv2"

	bootstrapapi "github.com/hearsay-chat/hearsay/bootstrap-api"
	"github.com/hearsay-chat/hearsay/bootstrap-cloudfunctions/deploy"
	"github.com/hearsay-chat/hearsay/bootstrap-cloudfunctions/deploy/deploytest"
)

// useFakeFunctions points the cloud commands at an in-process fake of the
// Functions API whose deployed function is served by h.
func useFakeFunctions(t *testing.T, h http.Handler) *deploytest.Fake {
	t.Helper()
	fake, _ := deploytest.New(t)
	fn := httptest.NewServer(h)
	t.Cleanup(fn.Close)
	fake.FunctionURL = fn.URL
	old := dialFunctions
	dialFunctions = func(ctx context.Context) (*functions.FunctionClient, error) {
		return functions.NewFunctionClient(ctx, fake.ClientOptions()...)
	}
	t.Cleanup(func() { dialFunctions = old })
	return fake
}

func TestCloudDeployAndStatus(t *testing.T) {
	fake := useFakeFunctions(t, bootstrapapi.NewHandler(bootstrapapi.NewMemStore(), bootstrapapi.HandlerConfig{}))
	data := t.TempDir()
	env := map[string]string{"XDG_DATA_HOME": data}
	args := []string{"bootstrap", "deploy", "--project", "hearsay-prod", "--region", "europe-west1", "--admin-token", "tok"}

	code, out, errOut := runCLI(t, env, args...)
	if code != 0 {
		t.Fatalf("deploy: code %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	invoker := deploy.InvokerCommand("hearsay-prod", "europe-west1", "hearsay-bootstrap")
	for _, want := range []string{"created projects/hearsay-prod/locations/europe-west1/functions/hearsay-bootstrap",
		"state:       ACTIVE", "url:         " + fake.FunctionURL, invoker, "hearsay bootstrap ping --bootstrap " + fake.FunctionURL} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "uploaded the source") {
		t.Errorf("deploy progress on stderr: %q", errOut)
	}
	urlFile := filepath.Join(data, "hearsay", "cloud-url")
	if b, err := os.ReadFile(urlFile); err != nil || string(b) != fake.FunctionURL+"\n" {
		t.Errorf("url file: %q, %v; want the function URL", b, err)
	}
	fake.Mu.Lock()
	gotToken := fake.Creates[0].GetFunction().GetServiceConfig().GetEnvironmentVariables()["HEARSAY_ADMIN_TOKEN"]
	fake.Mu.Unlock()
	if gotToken != "tok" {
		t.Errorf("admin token on the function: %q", gotToken)
	}

	code, out, errOut = runCLI(t, env, args...)
	if code != 0 || !strings.Contains(out, "updated projects/hearsay-prod") {
		t.Fatalf("second deploy: code %d\n%s\n%s", code, out, errOut)
	}

	code, out, errOut = runCLI(t, map[string]string{"HEARSAY_PROJECT": "hearsay-prod", "CLOUDSDK_FUNCTIONS_REGION": "europe-west1"},
		"bootstrap", "status")
	if code != 0 {
		t.Fatalf("status: code %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"state:       ACTIVE", "url:         " + fake.FunctionURL, "ping:        ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}

	code, out, _ = runCLI(t, nil, "bootstrap", "status", "--project", "hearsay-prod", "--region", "europe-west1", "--json")
	var st struct {
		State, URL, Ping string
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.State != "ACTIVE" || st.URL != fake.FunctionURL || !strings.HasPrefix(st.Ping, "ok") {
		t.Errorf("status --json: code %d %+v\n%s", code, st, out)
	}
}

func TestCloudStatusNotPublic(t *testing.T) {
	useFakeFunctions(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "Error: Forbidden", http.StatusForbidden)
	}))
	if code, out, errOut := runCLI(t, nil, "bootstrap", "deploy", "--project", "hearsay-prod", "--region", "europe-west1",
		"--url-file", filepath.Join(t.TempDir(), "url")); code != 0 {
		t.Fatalf("deploy: %d %s %s", code, out, errOut)
	}
	code, out, errOut := runCLI(t, nil, "bootstrap", "status", "--project", "hearsay-prod", "--region", "europe-west1")
	if code != 0 || !strings.Contains(out, "ping:        failed") || !strings.Contains(out, "add-invoker-policy-binding") {
		t.Errorf("status of a private function: code %d\n%s\n%s", code, out, errOut)
	}
}

func TestCloudStatusMissingFunction(t *testing.T) {
	useFakeFunctions(t, http.NotFoundHandler())
	code, _, errOut := runCLI(t, nil, "bootstrap", "status", "--project", "hearsay-prod", "--region", "europe-west1", "--name", "nope")
	if code != 1 || !strings.Contains(errOut, "does not exist") || !strings.Contains(errOut, "hearsay bootstrap deploy") {
		t.Errorf("status of a missing function: code %d, stderr %q", code, errOut)
	}
}

func TestCloudFlagErrors(t *testing.T) {
	useFakeFunctions(t, http.NotFoundHandler())
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"bootstrap", "deploy"}, 2, "--project, --region"},
		{[]string{"bootstrap", "status", "--project", "p-roject1"}, 2, "--region"},
		{[]string{"bootstrap", "status", "--project", "Bad Project", "--region", "europe-west1"}, 1, "not a Google Cloud project id"},
		{[]string{"bootstrap", "deploy", "--project", "hearsay-prod", "--region", "eu"}, 1, "not a Cloud Functions region"},
		{[]string{"bootstrap", "deploy", "--project", "hearsay-prod", "--region", "europe-west1", "--max-instances", "0"}, 1, "--max-instances"},
	} {
		code, _, errOut := runCLI(t, nil, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: code %d stderr %q; want code %d and %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
}

func TestCloudDeployWithoutCredentials(t *testing.T) {
	home := t.TempDir()
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	t.Setenv("HOME", home)
	t.Setenv("CLOUDSDK_CONFIG", filepath.Join(home, "gcloud"))
	t.Setenv("NO_GCE_CHECK", "true")
	code, _, errOut := runCLI(t, nil, "bootstrap", "deploy", "--project", "hearsay-prod", "--region", "europe-west1")
	if code != 1 || !strings.Contains(errOut, "no Google application default credentials") ||
		!strings.Contains(errOut, "gcloud auth application-default login") {
		t.Errorf("deploy without credentials: code %d, stderr %q", code, errOut)
	}
}

// TestBootstrapSwitch sources .bootstrap-switch in bash (and sh) after a
// deploy wrote the URL file, and checks what it sets and prints.
func TestBootstrapSwitch(t *testing.T) {
	fake := useFakeFunctions(t, bootstrapapi.NewHandler(bootstrapapi.NewMemStore(), bootstrapapi.HandlerConfig{}))
	data := t.TempDir()
	if code, out, errOut := runCLI(t, map[string]string{"XDG_DATA_HOME": data}, "bootstrap", "deploy",
		"--project", "hearsay-prod", "--region", "europe-west1"); code != 0 {
		t.Fatalf("deploy: %d %s %s", code, out, errOut)
	}
	root, err := deploy.FindModuleRoot(".", modulePath)
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, ".bootstrap-switch")
	const local = "http://127.0.0.1:8080"
	type result struct {
		out, errOut, final string
	}
	source := func(t *testing.T, shell string, env []string, body string) result {
		t.Helper()
		path, err := exec.LookPath(shell)
		if err != nil {
			t.Fatalf("%s is needed for this test: %v", shell, err)
		}
		cmd := exec.Command(path, "-c", body+`
echo "FINAL=${BOOTSTRAP_DATA_SERVER:-}"`)
		cmd.Dir = root
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "XDG_DATA_HOME=" + data, "S=" + script}, env...)
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v\nstdout %s\nstderr %s", shell, err, out.String(), errOut.String())
		}
		o := out.String()
		i := strings.LastIndex(o, "FINAL=")
		return result{o[:i], errOut.String(), strings.TrimSpace(o[i+len("FINAL="):])}
	}

	for _, shell := range []string{"bash", "sh"} {
		t.Run(shell, func(t *testing.T) {
			// Unset: the toggle goes to the cloud URL from the deploy's file.
			r := source(t, shell, nil, `. "$S"`)
			if r.final != fake.FunctionURL || r.out != "BOOTSTRAP_DATA_SERVER (cloud): from (unset) to "+fake.FunctionURL+"\n" {
				t.Errorf("toggle from unset: %+v", r)
			}
			// Twice: back to local, printing from what to what.
			r = source(t, shell, nil, `. "$S"; . "$S"`)
			if r.final != local || !strings.Contains(r.out, "from "+fake.FunctionURL+" to "+local) {
				t.Errorf("toggle back: %+v", r)
			}
			// An explicit target and HEARSAY_CLOUD_URL over the file.
			r = source(t, shell, []string{"HEARSAY_CLOUD_URL=https://other.example", "BOOTSTRAP_DATA_SERVER=" + local},
				`HEARSAY_SWITCH_TO=cloud . "$S"`)
			if r.final != "https://other.example" || !strings.Contains(r.out, "from "+local+" to https://other.example") {
				t.Errorf("explicit cloud with HEARSAY_CLOUD_URL: %+v", r)
			}
			// No cloud URL anywhere: an error, the variable unchanged, and
			// the sourcing shell still running.
			r = source(t, shell, []string{"HEARSAY_CLOUD_URL_FILE=/nonexistent/url", "BOOTSTRAP_DATA_SERVER=" + local},
				`HEARSAY_SWITCH_TO=cloud . "$S" || echo "rc=$?"`)
			if r.final != local || !strings.Contains(r.out, "rc=1") || !strings.Contains(r.errOut, "no cloud URL") {
				t.Errorf("no cloud URL: %+v", r)
			}
			r = source(t, shell, []string{"BOOTSTRAP_DATA_SERVER=" + local}, `HEARSAY_SWITCH_TO=moon . "$S" || echo "rc=$?"`)
			if r.final != local || !strings.Contains(r.out, "rc=2") || !strings.Contains(r.errOut, "unknown target") {
				t.Errorf("unknown target: %+v", r)
			}
		})
	}
	t.Run("bash argument and a working ping", func(t *testing.T) {
		r := source(t, "bash", []string{"BOOTSTRAP_DATA_SERVER=" + local}, `. "$S" cloud >/dev/null`)
		if r.final != fake.FunctionURL {
			t.Fatalf("bash . FILE cloud: %+v", r)
		}
		// The switched variable is what hearsay reads.
		code, out, errOut := runCLI(t, map[string]string{"BOOTSTRAP_DATA_SERVER": r.final}, "bootstrap", "ping")
		if code != 0 || !strings.Contains(out, "ok") {
			t.Errorf("ping after the switch: %d %s %s", code, out, errOut)
		}
	})
}
