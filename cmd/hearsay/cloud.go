package main

// The Cloud Functions operator commands: deploy and status. They need
// Google application default credentials; chat peers never do.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	functions "cloud.google.com/go/functions/apiv2"
	"github.com/spf13/cobra"

	bootstrapapi "github.com/hearsay-chat/hearsay/bootstrap-api"
	"github.com/hearsay-chat/hearsay/bootstrap-cloudfunctions/deploy"
)

// modulePath is the hearsay module, whose checkout deploy uploads.
const modulePath = "github.com/hearsay-chat/hearsay"

// dialFunctions connects to the Cloud Functions API; tests replace it with
// a client of an in-process fake.
var dialFunctions = func(ctx context.Context) (*functions.FunctionClient, error) {
	return deploy.NewClient(ctx)
}

// addCloudCommands adds the Cloud Functions operator commands (deploy,
// status) to the bootstrap command.
func addCloudCommands(cmd *cobra.Command, streams *ioStreams) {
	cmd.AddCommand(newBootstrapDeployCmd(streams, nil), newBootstrapStatusCmd(streams, nil))
}

// cloudTarget are the flags that name a deployed function.
type cloudTarget struct {
	project string
	region  string
	name    string
}

func (c *cloudTarget) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&c.project, "project", "", "Google Cloud project id (default $GOOGLE_CLOUD_PROJECT or $CLOUDSDK_CORE_PROJECT)")
	f.StringVar(&c.region, "region", "", "Cloud Functions region, like europe-west1 (default $CLOUDSDK_FUNCTIONS_REGION)")
	f.StringVar(&c.name, "name", deploy.DefaultName, "function name")
}

// resolve fills the project and region from gcloud's variables and checks
// that both are known.
func (c *cloudTarget) resolve(getenv func(string) string) error {
	for _, v := range []string{"GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT"} {
		if c.project == "" {
			c.project = getenv(v)
		}
	}
	if c.region == "" {
		c.region = getenv("CLOUDSDK_FUNCTIONS_REGION")
	}
	var missing []string
	if c.project == "" {
		missing = append(missing, "--project")
	}
	if c.region == "" {
		missing = append(missing, "--region")
	}
	if len(missing) > 0 {
		return &usageError{err: fmt.Errorf("required flag(s) %s not set", strings.Join(missing, ", "))}
	}
	return nil
}

// cloudURLFile is where deploy records the function's URL for
// .bootstrap-switch: $XDG_DATA_HOME/hearsay/cloud-url.
func cloudURLFile(getenv func(string) string) string {
	return filepath.Join(defaultDataDir(getenv), "cloud-url")
}

type deployOpts struct {
	target       cloudTarget
	adminToken   string // the bootstrap command's --admin-token
	source       string
	urlFile      string
	collection   string
	memory       string
	maxInstances int32
	wait         time.Duration
}

// newBootstrapDeployCmd returns `hearsay bootstrap deploy`; after the
// target is resolved it calls runF, or runDeploy when runF is nil.
func newBootstrapDeployCmd(streams *ioStreams, runF func(context.Context, *deployOpts) error) *cobra.Command {
	o := &deployOpts{}
	cmd := &cobra.Command{
		Use:   "deploy",
		Short: "Deploy the bootstrap service to Google Cloud Functions (gen2, Firestore)",
		Long: `Deploy uploads the bootstrap function from this checkout to Cloud Functions
(gen2, Go runtime) and creates it, or updates it when it exists, then waits
for the build and prints the URL and state. The state lives in the project's
Firestore database (create it once, in Native mode).

It uses Google application default credentials ("gcloud auth
application-default login" or GOOGLE_APPLICATION_CREDENTIALS). It cannot make
the function public: it prints the gcloud command that does. --admin-token
is set as HEARSAY_ADMIN_TOKEN on the function (visible to project viewers).
The URL is also written to --url-file, which .bootstrap-switch reads.`,
		Example: `  hearsay bootstrap deploy --project my-project --region europe-west1
  hearsay bootstrap deploy --project my-project --region europe-west1 --name hearsay-test --admin-token s3cret`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.target.resolve(streams.Getenv); err != nil {
				return err
			}
			o.adminToken, _ = cmd.Flags().GetString("admin-token")
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return runDeploy(cmd.Context(), streams, o)
		},
	}
	o.target.addFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&o.source, "source", "", "root of the hearsay checkout to upload (default: found from the current directory)")
	f.StringVar(&o.urlFile, "url-file", "", "file to write the function URL to (default $XDG_DATA_HOME/hearsay/cloud-url)")
	f.StringVar(&o.collection, "collection", "", "Firestore collection of the state (default hearsay-bootstrap)")
	f.StringVar(&o.memory, "memory", deploy.DefaultMemory, "memory of each instance")
	f.Int32Var(&o.maxInstances, "max-instances", deploy.DefaultMaxInstances, "maximum number of instances")
	f.DurationVar(&o.wait, "wait", 20*time.Minute, "how long to wait for the deployment")
	return cmd
}

func runDeploy(ctx context.Context, streams *ioStreams, o *deployOpts) error {
	if o.source == "" {
		wd, err := os.Getwd()
		if err != nil {
			return fmt.Errorf("find the checkout: %w", err)
		}
		if o.source, err = deploy.FindModuleRoot(wd, modulePath); err != nil {
			return err
		}
	}
	if o.urlFile == "" {
		o.urlFile = cloudURLFile(streams.Getenv)
	}
	if o.maxInstances < 1 {
		return fmt.Errorf("--max-instances %d: want at least 1", o.maxInstances)
	}
	env := map[string]string{}
	if o.adminToken != "" {
		env["HEARSAY_ADMIN_TOKEN"] = o.adminToken
	}
	if o.collection != "" {
		env["HEARSAY_FIRESTORE_COLLECTION"] = o.collection
	}
	ctx, cancel := context.WithTimeout(ctx, o.wait)
	defer cancel()
	client, err := dialFunctions(ctx)
	if err != nil {
		return err
	}
	defer client.Close()
	res, err := deploy.Deploy(ctx, client, deploy.Config{
		Project: o.target.project, Region: o.target.region, Name: o.target.name,
		SourceDir: o.source, Memory: o.memory, MaxInstances: o.maxInstances, Env: env,
		Progress: streams.ErrOut,
	})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("deploy did not finish within --wait %s (it may still complete; check with hearsay bootstrap status): %w", o.wait, err)
		}
		return err
	}
	verb := "updated"
	if res.Created {
		verb = "created"
	}
	fmt.Fprintf(streams.Out, "%s %s\n", verb, res.Name)
	printResult(streams, res)
	if res.URL != "" {
		if err := writeURLFile(o.urlFile, res.URL); err != nil {
			return err
		}
		fmt.Fprintf(streams.Out, "url written to %s (source .bootstrap-switch to use it)\n", o.urlFile)
	}
	fmt.Fprintf(streams.Out, "\nThis command does not make the function public (that is an IAM binding on its\n"+
		"Cloud Run service). To let peers call it without credentials, run:\n  %s\n"+
		"then check it with:\n  hearsay bootstrap ping --bootstrap %s\n",
		deploy.InvokerCommand(o.target.project, o.target.region, o.target.name), res.URL)
	return nil
}

func printResult(streams *ioStreams, r *deploy.Result) {
	fmt.Fprintf(streams.Out, "state:       %s\n", r.State)
	fmt.Fprintf(streams.Out, "url:         %s\n", r.URL)
	fmt.Fprintf(streams.Out, "runtime:     %s (entry point %s)\n", r.Runtime, r.EntryPoint)
	if !r.UpdateTime.IsZero() {
		fmt.Fprintf(streams.Out, "updated:     %s\n", r.UpdateTime.UTC().Format(time.RFC3339))
	}
	for _, m := range r.Messages {
		fmt.Fprintf(streams.Out, "message:     %s\n", m)
	}
}

// writeURLFile records the URL atomically, so a concurrent reader never
// sees half of it.
func writeURLFile(path, url string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write url file: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(url+"\n"), 0o600); err != nil {
		return fmt.Errorf("write url file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write url file: %w", err)
	}
	return nil
}

type statusOpts struct {
	target  cloudTarget
	ping    bool
	timeout time.Duration // the bootstrap command's --timeout
	json    bool          // the bootstrap command's --json
}

// newBootstrapStatusCmd returns `hearsay bootstrap status`; after the
// target is resolved it calls runF, or runStatus when runF is nil.
func newBootstrapStatusCmd(streams *ioStreams, runF func(context.Context, *statusOpts) error) *cobra.Command {
	o := &statusOpts{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the deployed bootstrap function's state and URL",
		Long: `Status asks the Cloud Functions API for the deployed function's state and URL
(application default credentials needed), then pings the URL without
credentials, the way a peer would: a 403 there means the public invoker
binding is missing.`,
		Example: "  hearsay bootstrap status --project my-project --region europe-west1",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.target.resolve(streams.Getenv); err != nil {
				return err
			}
			o.timeout, _ = cmd.Flags().GetDuration("timeout")
			o.json, _ = cmd.Flags().GetBool("json")
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return runStatus(cmd.Context(), streams, o)
		},
	}
	o.target.addFlags(cmd)
	cmd.Flags().BoolVar(&o.ping, "ping", true, "also ping the function's URL without credentials")
	return cmd
}

// statusJSON is what status --json prints.
type statusJSON struct {
	*deploy.Result
	Ping      string `json:"ping,omitempty"`
	PingError string `json:"ping_error,omitempty"`
}

func runStatus(ctx context.Context, streams *ioStreams, o *statusOpts) error {
	client, err := dialFunctions(ctx)
	if err != nil {
		return err
	}
	defer client.Close()
	res, err := deploy.Status(ctx, client, o.target.project, o.target.region, o.target.name)
	if err != nil {
		return err
	}
	out := statusJSON{Result: res}
	if o.ping && res.URL != "" {
		out.Ping, out.PingError = pingFunction(ctx, res.URL, o.timeout, o.target)
	}
	if o.json {
		return printJSON(streams, out)
	}
	fmt.Fprintf(streams.Out, "function:    %s\n", res.Name)
	printResult(streams, res)
	switch {
	case out.Ping != "":
		fmt.Fprintf(streams.Out, "ping:        %s\n", out.Ping)
	case out.PingError != "":
		fmt.Fprintf(streams.Out, "ping:        failed: %s\n", out.PingError)
	}
	return nil
}

// pingFunction pings the function as a peer would (no credentials) and
// explains the usual failure.
func pingFunction(ctx context.Context, url string, timeout time.Duration, t cloudTarget) (ok, failure string) {
	c, err := bootstrapapi.NewClient([]string{url}, bootstrapapi.WithHTTPClient(&http.Client{Timeout: timeout}))
	if err != nil {
		return "", err.Error()
	}
	start := time.Now()
	if _, err := c.Ping(ctx); err != nil {
		msg := err.Error()
		var apiErr *bootstrapapi.Error
		if errors.As(err, &apiErr) && (strings.Contains(msg, "403") || apiErr.Code == bootstrapapi.ECodeUnauthorized ||
			strings.Contains(strings.ToLower(msg), "forbidden")) {
			msg += "; the function is not public yet: " + deploy.InvokerCommand(t.project, t.region, t.name)
		}
		return "", msg
	}
	return fmt.Sprintf("ok in %s", time.Since(start).Round(time.Millisecond)), ""
}
