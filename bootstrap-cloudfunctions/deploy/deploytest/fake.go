// Package deploytest is an in-process fake of the Cloud Functions API
// (functions v2 and its long-running operations, over gRPC on 127.0.0.1)
// and of the signed upload URL, for tests of deploy and status.
package deploytest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	functions "cloud.google.com/go/functions/apiv2"
	"cloud.google.com/go/functions/apiv2/functionspb"
	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Fake is an in-process Cloud Functions API and signed-upload endpoint.
// Its operations finish on the first poll, so a client's Wait really
// polls. Lock Mu to read the recorded fields. It is safe for concurrent
// use.
type Fake struct {
	functionspb.UnimplementedFunctionServiceServer
	longrunningpb.UnimplementedOperationsServer

	uploadSrv *httptest.Server
	addr      string

	// FunctionURL is the URL the fake gives deployed functions; set it
	// before deploying.
	FunctionURL string

	Mu        sync.Mutex
	Functions map[string]*functionspb.Function // by full name
	pending   map[string]*functionspb.Function // operation name -> result
	opSeq     int
	Creates   []*functionspb.CreateFunctionRequest
	Updates   []*functionspb.UpdateFunctionRequest
	Polls     int
	Uploads   [][]byte
	// UploadStatus, when not 0, is what the upload endpoint answers.
	UploadStatus int
	// BadUpload says what was wrong with a refused upload request.
	BadUpload string
}

// Bucket and Object name the storage source the fake's upload URL maps to.
const (
	Bucket = "gcf-v2-uploads-fake"
	Object = "hearsay.zip"
)

// New starts the fake on 127.0.0.1 and returns it with a client of it;
// both stop when the test ends.
func New(t testing.TB) (*Fake, *functions.FunctionClient) {
	t.Helper()
	f := &Fake{
		Functions:   map[string]*functionspb.Function{},
		pending:     map[string]*functionspb.Function{},
		FunctionURL: "https://hearsay-bootstrap-fake.a.run.app",
	}
	f.uploadSrv = httptest.NewServer(http.HandlerFunc(f.serveUpload))
	t.Cleanup(f.uploadSrv.Close)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	functionspb.RegisterFunctionServiceServer(srv, f)
	longrunningpb.RegisterOperationsServer(srv, f)
	f.addr = lis.Addr().String()
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); <-served })

	client, err := functions.NewFunctionClient(context.Background(), f.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return f, client
}

// ClientOptions point a functions client at the fake, without
// credentials.
func (f *Fake) ClientOptions() []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(f.addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

func (f *Fake) serveUpload(w http.ResponseWriter, r *http.Request) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	switch {
	case r.Method != http.MethodPut:
		f.BadUpload = "method " + r.Method
	case r.Header.Get("Content-Type") != "application/zip":
		f.BadUpload = "content type " + r.Header.Get("Content-Type")
	case r.Header.Get("Authorization") != "":
		f.BadUpload = "an Authorization header on a signed URL"
	case r.URL.Query().Get("signature") != "fake":
		f.BadUpload = "the URL lost its signature"
	}
	if f.BadUpload != "" {
		http.Error(w, f.BadUpload, http.StatusBadRequest)
		return
	}
	if f.UploadStatus != 0 {
		http.Error(w, "AccessDenied: signature expired", f.UploadStatus)
		return
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.Uploads = append(f.Uploads, b)
}

func (f *Fake) GetFunction(_ context.Context, req *functionspb.GetFunctionRequest) (*functionspb.Function, error) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	fn, ok := f.Functions[req.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "Resource '%s' was not found", req.GetName())
	}
	return proto.Clone(fn).(*functionspb.Function), nil
}

func (f *Fake) GenerateUploadUrl(_ context.Context, req *functionspb.GenerateUploadUrlRequest) (*functionspb.GenerateUploadUrlResponse, error) {
	if !strings.HasPrefix(req.GetParent(), "projects/") || req.GetEnvironment() != functionspb.Environment_GEN_2 {
		return nil, status.Errorf(codes.InvalidArgument, "bad upload request %v", req)
	}
	return &functionspb.GenerateUploadUrlResponse{
		UploadUrl:     f.uploadSrv.URL + "/upload/" + Object + "?signature=fake",
		StorageSource: &functionspb.StorageSource{Bucket: Bucket, Object: Object},
	}, nil
}

// deployed completes a function the way the service does after a build.
func (f *Fake) deployed(fn *functionspb.Function) *functionspb.Function {
	fn = proto.Clone(fn).(*functionspb.Function)
	fn.State = functionspb.Function_ACTIVE
	fn.Url = f.FunctionURL
	fn.UpdateTime = timestamppb.Now()
	return fn
}

func (f *Fake) newOpLocked(fn *functionspb.Function) *longrunningpb.Operation {
	f.opSeq++
	name := fmt.Sprintf("projects/p/locations/r/operations/op-%d", f.opSeq)
	f.pending[name] = fn
	return &longrunningpb.Operation{Name: name, Done: false}
}

func (f *Fake) CreateFunction(_ context.Context, req *functionspb.CreateFunctionRequest) (*longrunningpb.Operation, error) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	f.Creates = append(f.Creates, req)
	name := req.GetParent() + "/functions/" + req.GetFunctionId()
	if _, ok := f.Functions[name]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "function %s already exists", name)
	}
	if req.GetFunction().GetName() != name {
		return nil, status.Errorf(codes.InvalidArgument, "function name %q does not match %q", req.GetFunction().GetName(), name)
	}
	fn := f.deployed(req.GetFunction())
	f.Functions[name] = fn
	return f.newOpLocked(fn), nil
}

func (f *Fake) UpdateFunction(_ context.Context, req *functionspb.UpdateFunctionRequest) (*longrunningpb.Operation, error) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	f.Updates = append(f.Updates, req)
	name := req.GetFunction().GetName()
	if _, ok := f.Functions[name]; !ok {
		return nil, status.Errorf(codes.NotFound, "function %s not found", name)
	}
	fn := f.deployed(req.GetFunction())
	f.Functions[name] = fn
	return f.newOpLocked(fn), nil
}

func (f *Fake) GetOperation(_ context.Context, req *longrunningpb.GetOperationRequest) (*longrunningpb.Operation, error) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	f.Polls++
	fn, ok := f.pending[req.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "operation %s not found", req.GetName())
	}
	resp, err := anypb.New(fn)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "pack: %v", err)
	}
	return &longrunningpb.Operation{Name: req.GetName(), Done: true,
		Result: &longrunningpb.Operation_Response{Response: resp}}, nil
}
