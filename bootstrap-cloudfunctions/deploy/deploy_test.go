package deploy

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/functions/apiv2/functionspb"

	bootstrapcf "github.com/hearsay-chat/hearsay/bootstrap-cloudfunctions"
	"github.com/hearsay-chat/hearsay/bootstrap-cloudfunctions/deploy/deploytest"
)

const modPath = "github.com/hearsay-chat/hearsay"

func moduleRoot(t testing.TB) string {
	t.Helper()
	root, err := FindModuleRoot(".", modPath)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func testConfig(t testing.TB) Config {
	return Config{Project: "hearsay-prod", Region: "europe-west1", SourceDir: moduleRoot(t),
		Env: map[string]string{"HEARSAY_ADMIN_TOKEN": "tok"}}
}

func TestEntryPointIsTheRegisteredFunction(t *testing.T) {
	if EntryPoint != bootstrapcf.FunctionName {
		t.Fatalf("deploy uses entry point %q but the backend registers %q", EntryPoint, bootstrapcf.FunctionName)
	}
}

func TestDeployCreatesThenUpdates(t *testing.T) {
	fake, client := deploytest.New(t)
	ctx := context.Background()
	var progress bytes.Buffer
	cfg := testConfig(t)
	cfg.Progress = &progress

	res, err := Deploy(ctx, client, cfg)
	if err != nil {
		t.Fatalf("first deploy: %v", err)
	}
	wantName := "projects/hearsay-prod/locations/europe-west1/functions/hearsay-bootstrap"
	if !res.Created || res.Name != wantName || res.URL != fake.FunctionURL || res.State != "ACTIVE" {
		t.Errorf("first deploy result %+v, want created %s at %s, ACTIVE", res, wantName, fake.FunctionURL)
	}
	fake.Mu.Lock()
	if len(fake.Creates) != 1 || len(fake.Updates) != 0 || len(fake.Uploads) != 1 || fake.Polls < 1 {
		t.Fatalf("after first deploy: %d creates, %d updates, %d uploads, %d polls; want 1, 0, 1, >=1",
			len(fake.Creates), len(fake.Updates), len(fake.Uploads), fake.Polls)
	}
	c := fake.Creates[0]
	fake.Mu.Unlock()
	if c.GetParent() != "projects/hearsay-prod/locations/europe-west1" || c.GetFunctionId() != "hearsay-bootstrap" {
		t.Errorf("create parent %q id %q", c.GetParent(), c.GetFunctionId())
	}
	fn := c.GetFunction()
	bc, sc := fn.GetBuildConfig(), fn.GetServiceConfig()
	if fn.GetEnvironment() != functionspb.Environment_GEN_2 || bc.GetRuntime() != "go126" || bc.GetEntryPoint() != "Bootstrap" {
		t.Errorf("create: environment %v runtime %q entry point %q", fn.GetEnvironment(), bc.GetRuntime(), bc.GetEntryPoint())
	}
	if ss := bc.GetSource().GetStorageSource(); ss.GetBucket() != deploytest.Bucket || ss.GetObject() != deploytest.Object {
		t.Errorf("create: source %v, want the storage source of the upload URL", bc.GetSource())
	}
	env := sc.GetEnvironmentVariables()
	if env["GOOGLE_CLOUD_PROJECT"] != "hearsay-prod" || env["HEARSAY_ADMIN_TOKEN"] != "tok" {
		t.Errorf("create: environment %v", env)
	}
	if sc.GetMaxInstanceCount() != DefaultMaxInstances || sc.GetAvailableMemory() != DefaultMemory {
		t.Errorf("create: service config %v", sc)
	}
	for _, want := range []string{"assembled the upload", "uploaded", "creating"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress %q lacks %q", progress.String(), want)
		}
	}

	res, err = Deploy(ctx, client, cfg)
	if err != nil {
		t.Fatalf("second deploy: %v", err)
	}
	if res.Created {
		t.Error("second deploy says it created the function")
	}
	fake.Mu.Lock()
	defer fake.Mu.Unlock()
	if len(fake.Creates) != 1 || len(fake.Updates) != 1 || len(fake.Uploads) != 2 {
		t.Fatalf("after second deploy: %d creates, %d updates, %d uploads; want 1, 1, 2",
			len(fake.Creates), len(fake.Updates), len(fake.Uploads))
	}
	u := fake.Updates[0]
	if u.GetFunction().GetName() != wantName || !slices.Equal(u.GetUpdateMask().GetPaths(), updateMask) {
		t.Errorf("update %q mask %v", u.GetFunction().GetName(), u.GetUpdateMask().GetPaths())
	}
	if !bytes.Equal(fake.Uploads[0], fake.Uploads[1]) {
		t.Error("the same sources gave two different zips")
	}
}

// unzip returns the archive's files by name.
func unzip(t testing.TB, b []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("the upload is not a zip: %v", err)
	}
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name] = data
	}
	return files
}

func uploaded(t *testing.T) map[string][]byte {
	t.Helper()
	fake, client := deploytest.New(t)
	if _, err := Deploy(context.Background(), client, testConfig(t)); err != nil {
		t.Fatal(err)
	}
	fake.Mu.Lock()
	defer fake.Mu.Unlock()
	if fake.BadUpload != "" {
		t.Fatalf("bad upload: %s", fake.BadUpload)
	}
	return unzip(t, fake.Uploads[0])
}

func TestUploadLayout(t *testing.T) {
	files := uploaded(t)
	root := moduleRoot(t)
	for _, name := range []string{"go.mod", "go.sum"} {
		want, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(files[name], want) {
			t.Errorf("%s in the upload differs from the module's", name)
		}
	}
	var rootGo []string
	for name := range files {
		if !strings.Contains(name, "/") && strings.HasSuffix(name, ".go") {
			rootGo = append(rootGo, name)
		}
		if strings.HasSuffix(name, "_test.go") {
			t.Errorf("test file %s in the upload", name)
		}
		for _, banned := range []string{"cmd/", "deploy/", "firestoretest/", "bootstrap-server/", "chat/", "repl/"} {
			if strings.Contains(name, banned) {
				t.Errorf("%s in the upload; the function does not need it", name)
			}
		}
	}
	if !slices.Equal(rootGo, []string{RootFile}) {
		t.Fatalf("root Go files %v, want only %s", rootGo, RootFile)
	}
	src := string(files[RootFile])
	if !strings.Contains(src, "package "+RootPackage+"\n") || strings.Contains(src, "package main") ||
		!strings.Contains(src, `import _ "`+modPath+`/bootstrap-cloudfunctions"`) {
		t.Errorf("generated root file:\n%s", src)
	}
	for _, want := range []string{"bootstrap-cloudfunctions/store.go", "bootstrap-cloudfunctions/function.go",
		"bootstrap-api/handler.go", "bootstrap-api/rules.go"} {
		if _, ok := files[want]; !ok {
			t.Errorf("%s missing from the upload", want)
		}
	}
}

// TestUploadBuildsOffline unzips the upload and builds it the way the
// Cloud Functions Go build does: a generated main module that requires
// the uploaded module (replaced by the unzipped folder), imports its root
// package and calls funcframework.Start. It builds from the module cache
// only (GOPROXY=off), then runs the binary and asks the function for a
// ping: without a project it must answer the API's JSON 503.
func TestUploadBuildsOffline(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary; skipped in -short")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("needs the go tool: %v", err)
	}
	files := uploaded(t)
	dir := t.TempDir()
	srcDir := filepath.Join(dir, "src")
	for name, data := range files {
		p := filepath.Join(srcDir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	appDir := filepath.Join(dir, "serverless_function_app")
	if err := os.MkdirAll(appDir, 0o755); err != nil {
		t.Fatal(err)
	}
	gomod := "module functionapp\n\ngo 1.26.0\n\nrequire " + modPath + " v0.0.0\n\nreplace " + modPath + " => ../src\n"
	mainGo := `package main

import (
	"log"
	"os"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	_ "` + modPath + `"
)

func main() {
	if err := funcframework.StartHostPort("127.0.0.1", os.Getenv("PORT")); err != nil {
		log.Fatalf("funcframework.Start: %v", err)
	}
}
`
	for name, data := range map[string][]byte{"go.mod": []byte(gomod), "main.go": []byte(mainGo), "go.sum": files["go.sum"]} {
		if err := os.WriteFile(filepath.Join(appDir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "fn")
	build := exec.Command(gobin, "build", "-o", bin, ".")
	build.Dir = appDir
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off", "GONOSUMDB=*", "GOSUMDB=off", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("the upload does not build offline: %v\n%s", err, out)
	}

	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	run := exec.CommandContext(ctx, bin)
	run.Env = []string{"PORT=" + port, "FUNCTION_TARGET=" + EntryPoint, "HOME=" + dir, "PATH=" + os.Getenv("PATH")}
	var out bytes.Buffer
	run.Stdout, run.Stderr = &out, &out
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = run.Wait(); close(exited) }()
	t.Cleanup(func() { cancel(); <-exited })

	var resp *http.Response
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err = http.Get("http://127.0.0.1:" + port + "/any/path/v1/ping")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the built function does not answer: %v", err)
		}
		select {
		case <-exited:
			t.Fatalf("the built function exited; output:\n%s", out.String())
		case <-tick.C:
		}
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"code":"unavailable"`) ||
		!strings.Contains(string(body), "GOOGLE_CLOUD_PROJECT") {
		t.Errorf("ping of the unconfigured function: %d %s, want the API's 503 naming GOOGLE_CLOUD_PROJECT", resp.StatusCode, body)
	}
}

func TestDeployUploadRefused(t *testing.T) {
	fake, client := deploytest.New(t)
	fake.UploadStatus = http.StatusForbidden
	_, err := Deploy(context.Background(), client, testConfig(t))
	if err == nil || !strings.Contains(err.Error(), "upload the source") || !strings.Contains(err.Error(), "403") {
		t.Fatalf("deploy with a refused upload: %v", err)
	}
	fake.Mu.Lock()
	defer fake.Mu.Unlock()
	if len(fake.Creates)+len(fake.Updates) != 0 {
		t.Error("the function was created although the upload failed")
	}
}

func TestStatus(t *testing.T) {
	fake, client := deploytest.New(t)
	ctx := context.Background()
	_, err := Status(ctx, client, "hearsay-prod", "europe-west1", "")
	if err == nil || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "hearsay bootstrap deploy") {
		t.Fatalf("status of a missing function: %v", err)
	}
	if _, err := Deploy(ctx, client, testConfig(t)); err != nil {
		t.Fatal(err)
	}
	res, err := Status(ctx, client, "hearsay-prod", "europe-west1", "")
	if err != nil {
		t.Fatal(err)
	}
	if res.State != "ACTIVE" || res.URL != fake.FunctionURL || res.Runtime != "go126" || res.EntryPoint != EntryPoint || res.UpdateTime.IsZero() {
		t.Errorf("status %+v", res)
	}
}

func TestValidateTarget(t *testing.T) {
	for _, tc := range []struct {
		project, region, name string
		ok                    bool
	}{
		{"hearsay-prod", "europe-west1", "hearsay-bootstrap", true},
		{"example.com:hearsay", "us-central1", "b1", true},
		{"", "europe-west1", "x", false},
		{"UPPER-case", "europe-west1", "x", false},
		{"hearsay-prod", "europe west1", "x", false},
		{"hearsay-prod", "europe-west1", "Bad_Name", false},
		{"hearsay-prod", "europe-west1", "1abc", false},
	} {
		err := validateTarget(tc.project, tc.region, tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("validateTarget(%q, %q, %q) = %v, want ok=%v", tc.project, tc.region, tc.name, err, tc.ok)
		}
	}
}

func TestNewClientWithoutCredentials(t *testing.T) {
	home := t.TempDir()
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	t.Setenv("HOME", home)
	t.Setenv("CLOUDSDK_CONFIG", filepath.Join(home, "gcloud"))
	// Make the metadata-server probe fail at once instead of waiting for
	// a GCE host that is not there.
	t.Setenv("GCE_METADATA_HOST", "")
	t.Setenv("NO_GCE_CHECK", "true")
	_, err := NewClient(context.Background())
	if !errors.Is(err, ErrNoCredentials) || !strings.Contains(err.Error(), "gcloud auth application-default login") {
		t.Fatalf("NewClient without credentials: %v, want ErrNoCredentials with the fix", err)
	}
}

func TestInvokerCommand(t *testing.T) {
	got := InvokerCommand("hearsay-prod", "europe-west1", "hearsay-bootstrap")
	want := "gcloud functions add-invoker-policy-binding hearsay-bootstrap --region=europe-west1 --project=hearsay-prod --member=allUsers"
	if got != want {
		t.Errorf("InvokerCommand = %q, want %q", got, want)
	}
}
