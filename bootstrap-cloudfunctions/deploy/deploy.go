// Package deploy deploys the bootstrap function to Cloud Functions (gen2)
// and reports its status, through the Cloud Functions API
// (cloud.google.com/go/functions/apiv2): assemble the upload, ask for a
// signed upload URL, PUT the zip, create or update the function, wait for
// the long-running operation.
//
// It needs Google credentials (application default credentials), so it is
// an operator's tool; chat peers never need them. It cannot make the
// function public: that is an IAM binding on the underlying Cloud Run
// service, which InvokerCommand prints for the operator to run.
package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/auth/credentials"
	functions "cloud.google.com/go/functions/apiv2"
	"cloud.google.com/go/functions/apiv2/functionspb"
	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// Defaults of Config.
const (
	DefaultName       = "hearsay-bootstrap"
	DefaultRuntime    = "go126"
	DefaultMemory     = "256Mi"
	DefaultTimeoutSec = 60
	// DefaultMaxInstances caps cost; the state is one document, so more
	// instances would mostly contend.
	DefaultMaxInstances = 10
	// EntryPoint is the function name bootstrapcf registers (kept equal to
	// bootstrapcf.FunctionName by a test; importing bootstrapcf here would
	// register the function inside the hearsay binary).
	EntryPoint = "Bootstrap"
)

// Config says what to deploy where.
type Config struct {
	Project string
	Region  string
	// Name is the function's id; DefaultName when empty.
	Name string
	// SourceDir is the root of the hearsay module to upload.
	SourceDir string
	// Runtime, Memory, TimeoutSeconds and MaxInstances describe the
	// service; zero values mean the defaults.
	Runtime        string
	Memory         string
	TimeoutSeconds int32
	MaxInstances   int32
	// Env is added to the function's environment (GOOGLE_CLOUD_PROJECT is
	// always set to Project).
	Env map[string]string
	// HTTPClient uploads the zip; nil means a client with a 5 min timeout.
	HTTPClient *http.Client
	// Progress receives one line per step; nil discards.
	Progress io.Writer
}

// Result is the state of a deployed function.
type Result struct {
	// Name is the full resource name.
	Name string
	// Created is true when Deploy created the function, false when it
	// updated it.
	Created bool
	// URL is where the function answers.
	URL        string
	State      string
	UpdateTime time.Time
	Runtime    string
	EntryPoint string
	// Messages are the state messages (build errors, warnings).
	Messages []string
	// UploadBytes is the size of the uploaded zip (Deploy only).
	UploadBytes int
}

var (
	idRE     = regexp.MustCompile(`^[a-z][a-z0-9-]{4,28}[a-z0-9]$`)
	regionRE = regexp.MustCompile(`^[a-z]+-[a-z]+[0-9]+$`)
	nameRE   = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

func (c *Config) normalize() error {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.Runtime == "" {
		c.Runtime = DefaultRuntime
	}
	if c.Memory == "" {
		c.Memory = DefaultMemory
	}
	if c.TimeoutSeconds == 0 {
		c.TimeoutSeconds = DefaultTimeoutSec
	}
	if c.MaxInstances == 0 {
		c.MaxInstances = DefaultMaxInstances
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 5 * time.Minute}
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.SourceDir == "" {
		return errors.New("deploy: no source directory")
	}
	return validateTarget(c.Project, c.Region, c.Name)
}

func validateTarget(project, region, name string) error {
	if !idRE.MatchString(project) && !strings.Contains(project, ":") {
		return fmt.Errorf("project %q is not a Google Cloud project id (6-30 lowercase letters, digits, dashes)", project)
	}
	if !regionRE.MatchString(region) {
		return fmt.Errorf("region %q is not a Cloud Functions region (like europe-west1)", region)
	}
	if !nameRE.MatchString(name) {
		return fmt.Errorf("function name %q: use lowercase letters, digits and dashes, starting with a letter", name)
	}
	return nil
}

// ErrNoCredentials is returned (wrapped) by NewClient when no application
// default credentials are found.
var ErrNoCredentials = errors.New("no Google application default credentials")

// NewClient returns a Cloud Functions API client authenticated with the
// application default credentials. opts are added last (tests point it at
// a fake). Close the client when done.
func NewClient(ctx context.Context, opts ...option.ClientOption) (*functions.FunctionClient, error) {
	creds, err := credentials.DetectDefault(&credentials.DetectOptions{Scopes: functions.DefaultAuthScopes()})
	if err != nil {
		return nil, fmt.Errorf("%w: run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS "+
			"to a service account key file (the account needs roles/cloudfunctions.developer and "+
			"roles/iam.serviceAccountUser): %v", ErrNoCredentials, err)
	}
	all := append([]option.ClientOption{option.WithAuthCredentials(creds)}, opts...)
	c, err := functions.NewFunctionClient(ctx, all...)
	if err != nil {
		return nil, fmt.Errorf("connect to the Cloud Functions API: %w", err)
	}
	return c, nil
}

// FullName returns the function's resource name.
func FullName(project, region, name string) string {
	return fmt.Sprintf("projects/%s/locations/%s/functions/%s", project, region, name)
}

// InvokerCommand is the gcloud command that lets anyone call the function;
// Deploy cannot do it (it is an IAM binding on the Cloud Run service).
func InvokerCommand(project, region, name string) string {
	return fmt.Sprintf("gcloud functions add-invoker-policy-binding %s --region=%s --project=%s --member=allUsers",
		name, region, project)
}

// updateMask lists the fields Deploy sets, so an update replaces exactly
// those and keeps what an operator changed elsewhere (service account,
// VPC, secrets).
var updateMask = []string{
	"build_config.runtime",
	"build_config.entry_point",
	"build_config.source",
	"service_config.environment_variables",
	"service_config.available_memory",
	"service_config.timeout_seconds",
	"service_config.max_instance_count",
	"service_config.ingress_settings",
	"service_config.all_traffic_on_latest_revision",
	"labels",
}

// Deploy uploads the source and creates the function, or updates it when
// it exists, and waits for the operation. It blocks for the whole deploy
// (minutes on Google: the build runs remotely); ctx bounds it.
func Deploy(ctx context.Context, client *functions.FunctionClient, cfg Config) (*Result, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	parent := fmt.Sprintf("projects/%s/locations/%s", cfg.Project, cfg.Region)
	name := FullName(cfg.Project, cfg.Region, cfg.Name)
	logf := func(format string, args ...any) { fmt.Fprintf(cfg.Progress, format+"\n", args...) }

	src, err := BuildSource(cfg.SourceDir)
	if err != nil {
		return nil, fmt.Errorf("assemble the upload: %w", err)
	}
	logf("assembled the upload: %d files, %d bytes (module %s)", len(src.Files), len(src.Zip), src.ModulePath)

	exists := true
	if _, err := client.GetFunction(ctx, &functionspb.GetFunctionRequest{Name: name}); err != nil {
		if status.Code(err) != codes.NotFound {
			return nil, apiError("look up "+name, err)
		}
		exists = false
	}

	up, err := client.GenerateUploadUrl(ctx, &functionspb.GenerateUploadUrlRequest{
		Parent: parent, Environment: functionspb.Environment_GEN_2,
	})
	if err != nil {
		return nil, apiError("request an upload URL", err)
	}
	if up.GetUploadUrl() == "" || up.GetStorageSource() == nil {
		return nil, errors.New("request an upload URL: the API answered without a URL or storage source")
	}
	if err := upload(ctx, cfg.HTTPClient, up.GetUploadUrl(), src.Zip); err != nil {
		return nil, err
	}
	logf("uploaded the source")

	env := map[string]string{}
	for k, v := range cfg.Env {
		env[k] = v
	}
	env["GOOGLE_CLOUD_PROJECT"] = cfg.Project
	fn := &functionspb.Function{
		Name:        name,
		Description: "hearsay bootstrap data service",
		Environment: functionspb.Environment_GEN_2,
		BuildConfig: &functionspb.BuildConfig{
			Runtime:    cfg.Runtime,
			EntryPoint: EntryPoint,
			Source: &functionspb.Source{
				Source: &functionspb.Source_StorageSource{StorageSource: up.GetStorageSource()},
			},
		},
		ServiceConfig: &functionspb.ServiceConfig{
			EnvironmentVariables:       env,
			AvailableMemory:            cfg.Memory,
			TimeoutSeconds:             cfg.TimeoutSeconds,
			MaxInstanceCount:           cfg.MaxInstances,
			IngressSettings:            functionspb.ServiceConfig_ALLOW_ALL,
			AllTrafficOnLatestRevision: true,
		},
		Labels: map[string]string{"app": "hearsay"},
	}

	var res *functionspb.Function
	if exists {
		logf("updating %s (the build runs on Google; this takes a few minutes)", name)
		op, err := client.UpdateFunction(ctx, &functionspb.UpdateFunctionRequest{
			Function: fn, UpdateMask: &fieldmaskpb.FieldMask{Paths: updateMask},
		})
		if err != nil {
			return nil, apiError("update "+name, err)
		}
		if res, err = op.Wait(ctx); err != nil {
			return nil, apiError("wait for the update of "+name, err)
		}
	} else {
		logf("creating %s (the build runs on Google; this takes a few minutes)", name)
		op, err := client.CreateFunction(ctx, &functionspb.CreateFunctionRequest{
			Parent: parent, Function: fn, FunctionId: cfg.Name,
		})
		if err != nil {
			return nil, apiError("create "+name, err)
		}
		if res, err = op.Wait(ctx); err != nil {
			return nil, apiError("wait for the creation of "+name, err)
		}
	}
	r := result(res)
	r.Created = !exists
	r.UploadBytes = len(src.Zip)
	return r, nil
}

// Status returns the deployed function's state. A function that does not
// exist is an error that says how to deploy it.
func Status(ctx context.Context, client *functions.FunctionClient, project, region, name string) (*Result, error) {
	if name == "" {
		name = DefaultName
	}
	if err := validateTarget(project, region, name); err != nil {
		return nil, err
	}
	full := FullName(project, region, name)
	fn, err := client.GetFunction(ctx, &functionspb.GetFunctionRequest{Name: full})
	if status.Code(err) == codes.NotFound {
		return nil, fmt.Errorf("function %s does not exist; deploy it with `hearsay bootstrap deploy --project %s --region %s --name %s`",
			full, project, region, name)
	}
	if err != nil {
		return nil, apiError("look up "+full, err)
	}
	return result(fn), nil
}

func result(fn *functionspb.Function) *Result {
	r := &Result{
		Name:       fn.GetName(),
		URL:        fn.GetUrl(),
		State:      fn.GetState().String(),
		Runtime:    fn.GetBuildConfig().GetRuntime(),
		EntryPoint: fn.GetBuildConfig().GetEntryPoint(),
	}
	if r.URL == "" {
		r.URL = fn.GetServiceConfig().GetUri()
	}
	if t := fn.GetUpdateTime(); t != nil {
		r.UpdateTime = t.AsTime()
	}
	for _, m := range fn.GetStateMessages() {
		r.Messages = append(r.Messages, fmt.Sprintf("%s %s: %s", m.GetSeverity(), m.GetType(), m.GetMessage()))
	}
	slices.Sort(r.Messages)
	return r
}

// upload PUTs the zip to the signed URL. The URL carries its own
// authorization, so the request has no Authorization header.
func upload(ctx context.Context, hc *http.Client, url string, zip []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(zip))
	if err != nil {
		return fmt.Errorf("upload the source: %w", err)
	}
	req.Header.Set("Content-Type", "application/zip")
	req.ContentLength = int64(len(zip))
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("upload the source: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("upload the source: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

// apiError adds what the operator can do to the common API failures.
func apiError(what string, err error) error {
	hint := ""
	switch status.Code(err) {
	case codes.PermissionDenied:
		hint = " (does the account have roles/cloudfunctions.developer, and is the Cloud Functions API enabled: " +
			"`gcloud services enable cloudfunctions.googleapis.com cloudbuild.googleapis.com run.googleapis.com`?)"
	case codes.Unauthenticated:
		hint = " (refresh the credentials: `gcloud auth application-default login`)"
	case codes.InvalidArgument, codes.FailedPrecondition:
		hint = " (the API refused the request; see the message)"
	}
	return fmt.Errorf("%s: %w%s", what, err, hint)
}
