package deploy

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

// fakeAPI is an in-process Cloud Functions API (functions v2 and the
// long-running operations it returns) and a signed-upload endpoint. Its
// operations finish on the first poll, so Wait really polls once.
type fakeAPI struct {
	functionspb.UnimplementedFunctionServiceServer
	longrunningpb.UnimplementedOperationsServer

	uploadSrv *httptest.Server
	// fnURL is the URL the fake gives deployed functions.
	fnURL string

	mu        sync.Mutex
	functions map[string]*functionspb.Function
	pending   map[string]*functionspb.Function // operation name -> result
	opSeq     int
	creates   []*functionspb.CreateFunctionRequest
	updates   []*functionspb.UpdateFunctionRequest
	polls     int
	uploads   [][]byte
	uploadErr int // status the upload endpoint answers; 0 = 200
	badUpload string
}

// newFakeAPI starts the fake on 127.0.0.1 and returns it with a client.
func newFakeAPI(t *testing.T) (*fakeAPI, *functions.FunctionClient) {
	t.Helper()
	f := &fakeAPI{
		functions: map[string]*functionspb.Function{},
		pending:   map[string]*functionspb.Function{},
		fnURL:     "https://hearsay-bootstrap-fake.a.run.app",
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
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); <-served })

	client, err := functions.NewFunctionClient(context.Background(),
		option.WithEndpoint(lis.Addr().String()),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return f, client
}

func (f *fakeAPI) serveUpload(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method != http.MethodPut:
		f.badUpload = "method " + r.Method
	case r.Header.Get("Content-Type") != "application/zip":
		f.badUpload = "content type " + r.Header.Get("Content-Type")
	case r.Header.Get("Authorization") != "":
		f.badUpload = "an Authorization header on a signed URL"
	case r.URL.Query().Get("signature") != "fake":
		f.badUpload = "the URL lost its signature"
	}
	if f.badUpload != "" {
		http.Error(w, f.badUpload, http.StatusBadRequest)
		return
	}
	if f.uploadErr != 0 {
		http.Error(w, "AccessDenied: signature expired", f.uploadErr)
		return
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.uploads = append(f.uploads, b)
}

func (f *fakeAPI) GetFunction(_ context.Context, req *functionspb.GetFunctionRequest) (*functionspb.Function, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn, ok := f.functions[req.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "Resource '%s' was not found", req.GetName())
	}
	return proto.Clone(fn).(*functionspb.Function), nil
}

func (f *fakeAPI) GenerateUploadUrl(_ context.Context, req *functionspb.GenerateUploadUrlRequest) (*functionspb.GenerateUploadUrlResponse, error) {
	if !strings.HasPrefix(req.GetParent(), "projects/") || req.GetEnvironment() != functionspb.Environment_GEN_2 {
		return nil, status.Errorf(codes.InvalidArgument, "bad upload request %v", req)
	}
	return &functionspb.GenerateUploadUrlResponse{
		UploadUrl:     f.uploadSrv.URL + "/upload/hearsay.zip?signature=fake",
		StorageSource: &functionspb.StorageSource{Bucket: "gcf-v2-uploads-fake", Object: "hearsay.zip"},
	}, nil
}

// deployed completes a function the way the service does after a build.
func (f *fakeAPI) deployed(fn *functionspb.Function) *functionspb.Function {
	fn = proto.Clone(fn).(*functionspb.Function)
	fn.State = functionspb.Function_ACTIVE
	fn.Url = f.fnURL
	fn.UpdateTime = timestamppb.Now()
	return fn
}

func (f *fakeAPI) newOpLocked(fn *functionspb.Function) *longrunningpb.Operation {
	f.opSeq++
	name := fmt.Sprintf("projects/p/locations/r/operations/op-%d", f.opSeq)
	f.pending[name] = fn
	return &longrunningpb.Operation{Name: name, Done: false}
}

func (f *fakeAPI) CreateFunction(_ context.Context, req *functionspb.CreateFunctionRequest) (*longrunningpb.Operation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates = append(f.creates, req)
	name := req.GetParent() + "/functions/" + req.GetFunctionId()
	if _, ok := f.functions[name]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "function %s already exists", name)
	}
	if req.GetFunction().GetName() != name {
		return nil, status.Errorf(codes.InvalidArgument, "function name %q does not match %q", req.GetFunction().GetName(), name)
	}
	fn := f.deployed(req.GetFunction())
	f.functions[name] = fn
	return f.newOpLocked(fn), nil
}

func (f *fakeAPI) UpdateFunction(_ context.Context, req *functionspb.UpdateFunctionRequest) (*longrunningpb.Operation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates = append(f.updates, req)
	name := req.GetFunction().GetName()
	if _, ok := f.functions[name]; !ok {
		return nil, status.Errorf(codes.NotFound, "function %s not found", name)
	}
	fn := f.deployed(req.GetFunction())
	f.functions[name] = fn
	return f.newOpLocked(fn), nil
}

func (f *fakeAPI) GetOperation(_ context.Context, req *longrunningpb.GetOperationRequest) (*longrunningpb.Operation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.polls++
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
