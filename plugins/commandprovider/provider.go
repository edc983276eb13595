package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"golang.org/x/crypto/ssh"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

const (
	commandType      = "command:remote:Command"
	copyToRemoteType = "command:remote:CopyToRemote"

	// schemaJSON is a stub: the Python SDK carries its own generated types,
	// so the engine only needs a parseable package description.
	schemaJSON = `{"name":"command","version":"1.2.1"}`
)

// commandProvider implements the subset of the command provider described in main.go.
type commandProvider struct {
	pulumirpc.UnimplementedResourceProviderServer

	host *provider.HostClient // nil when running without an engine (tests)

	// baseCtx is cancelled by Cancel; every operation's context derives from it.
	baseCtx    context.Context
	cancelBase context.CancelFunc

	mu      sync.Mutex
	clients map[*ssh.Client]struct{} // open SSH clients, closed by Cancel
}

func newCommandProvider(host *provider.HostClient) *commandProvider {
	ctx, cancel := context.WithCancel(context.Background())
	return &commandProvider{
		host:       host,
		baseCtx:    ctx,
		cancelBase: cancel,
		clients:    map[*ssh.Client]struct{}{},
	}
}

// --- property (un)marshalling ---------------------------------------------

func unmarshal(s *structpb.Struct, label string) (resource.PropertyMap, error) {
	if s == nil {
		return resource.PropertyMap{}, nil
	}
	return plugin.UnmarshalProperties(s, plugin.MarshalOptions{
		Label:         label,
		KeepUnknowns:  true,
		KeepSecrets:   true,
		KeepResources: true,
		SkipNulls:     true,
	})
}

func marshal(m resource.PropertyMap, label string) (*structpb.Struct, error) {
	return plugin.MarshalProperties(m, plugin.MarshalOptions{
		Label:         label,
		KeepUnknowns:  true,
		KeepSecrets:   true,
		KeepResources: true,
		SkipNulls:     true,
	})
}

// resourceType returns the type token of a request, from its Type field when
// the engine sets it and from the URN otherwise.
func resourceType(typ, urn string) string {
	if typ != "" {
		return typ
	}
	return string(resource.URN(urn).Type())
}

func unknownType(typ string) error {
	return fmt.Errorf("unknown resource type %q: this minimal command provider implements only %s and %s",
		typ, commandType, copyToRemoteType)
}

// opContext derives an operation context that ends when the request ends,
// when Cancel is called, or after the engine-supplied timeout (seconds).
func (p *commandProvider) opContext(ctx context.Context, timeoutSeconds float64) (context.Context, context.CancelFunc) {
	var cancel context.CancelFunc
	if timeoutSeconds > 0 {
		ctx, cancel = context.WithTimeout(ctx, time.Duration(timeoutSeconds*float64(time.Second)))
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	stop := context.AfterFunc(p.baseCtx, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

// logf sends a message to the engine's diagnostic stream for the given resource.
func (p *commandProvider) log(ctx context.Context, sev diag.Severity, urn resource.URN, msg string) {
	if p.host == nil {
		return
	}
	// Logging is best effort: a failure to log must not fail the operation.
	_ = p.host.Log(ctx, sev, urn, msg)
}

func (p *commandProvider) trackClient(c *ssh.Client) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clients[c] = struct{}{}
}

func (p *commandProvider) closeClient(c *ssh.Client) {
	p.mu.Lock()
	delete(p.clients, c)
	p.mu.Unlock()
	_ = c.Close()
}

// --- plugin-level RPCs -------------------------------------------------------

func (p *commandProvider) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

func (p *commandProvider) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	return &pulumirpc.GetSchemaResponse{Schema: schemaJSON}, nil
}

func (p *commandProvider) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (p *commandProvider) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

func (p *commandProvider) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	return &pulumirpc.ConfigureResponse{
		AcceptSecrets:   true,
		SupportsPreview: true,
		AcceptResources: true,
	}, nil
}

// Cancel stops in-flight work: it cancels all operation contexts and closes
// every open SSH client.
func (p *commandProvider) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	p.cancelBase()
	p.mu.Lock()
	clients := p.clients
	p.clients = map[*ssh.Client]struct{}{}
	p.mu.Unlock()
	for c := range clients {
		_ = c.Close()
	}
	return &emptypb.Empty{}, nil
}

// --- resource RPCs -----------------------------------------------------------

func (p *commandProvider) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	typ := resourceType(req.GetType(), req.GetUrn())
	news, err := unmarshal(req.GetNews(), "check.news")
	if err != nil {
		return nil, err
	}
	var inputs resource.PropertyMap
	var failures []*pulumirpc.CheckFailure
	switch typ {
	case commandType:
		inputs, failures = checkCommand(news)
	case copyToRemoteType:
		inputs, failures = checkCopyToRemote(news)
	default:
		return nil, unknownType(typ)
	}
	out, err := marshal(inputs, "check.inputs")
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CheckResponse{Inputs: out, Failures: failures}, nil
}

func (p *commandProvider) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	typ := resourceType(req.GetType(), req.GetUrn())
	// Prefer the old inputs; older engines send only the old state (outputs).
	oldStruct := req.GetOldInputs()
	if oldStruct == nil {
		oldStruct = req.GetOlds()
	}
	olds, err := unmarshal(oldStruct, "diff.olds")
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews(), "diff.news")
	if err != nil {
		return nil, err
	}
	switch typ {
	case commandType:
		return diffCommand(olds, news), nil
	case copyToRemoteType:
		return diffCopyToRemote(olds, news), nil
	default:
		return nil, unknownType(typ)
	}
}

func (p *commandProvider) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	typ := resourceType(req.GetType(), req.GetUrn())
	urn := resource.URN(req.GetUrn())
	props, err := unmarshal(req.GetProperties(), "create.properties")
	if err != nil {
		return nil, err
	}
	ctx, cancel := p.opContext(ctx, req.GetTimeout())
	defer cancel()

	var id string
	var outs resource.PropertyMap
	switch typ {
	case commandType:
		id, outs, err = p.createCommand(ctx, urn, props, req.GetPreview())
	case copyToRemoteType:
		id, outs, err = p.createCopyToRemote(ctx, props, req.GetPreview())
	default:
		return nil, unknownType(typ)
	}
	if err != nil {
		return nil, err
	}
	out, err := marshal(outs, "create.outputs")
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: id, Properties: out}, nil
}

func (p *commandProvider) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	typ := resourceType(req.GetType(), req.GetUrn())
	urn := resource.URN(req.GetUrn())
	olds, err := unmarshal(req.GetOlds(), "update.olds")
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews(), "update.news")
	if err != nil {
		return nil, err
	}
	ctx, cancel := p.opContext(ctx, req.GetTimeout())
	defer cancel()

	var outs resource.PropertyMap
	switch typ {
	case commandType:
		outs, err = p.updateCommand(ctx, urn, olds, news, req.GetPreview())
	case copyToRemoteType:
		outs, err = p.updateCopyToRemote(news)
	default:
		return nil, unknownType(typ)
	}
	if err != nil {
		return nil, err
	}
	out, err := marshal(outs, "update.outputs")
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: out}, nil
}

func (p *commandProvider) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	typ := resourceType(req.GetType(), req.GetUrn())
	urn := resource.URN(req.GetUrn())
	props, err := unmarshal(req.GetProperties(), "delete.properties")
	if err != nil {
		return nil, err
	}
	ctx, cancel := p.opContext(ctx, req.GetTimeout())
	defer cancel()

	switch typ {
	case commandType:
		err = p.deleteCommand(ctx, urn, props)
	case copyToRemoteType:
		// Like the official provider, deleting a CopyToRemote leaves the remote files in place.
		err = nil
	default:
		return nil, unknownType(typ)
	}
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// Read returns the recorded state unchanged: remote side effects cannot be
// read back, so a refresh never reports drift.
func (p *commandProvider) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	return &pulumirpc.ReadResponse{
		Id:         req.GetId(),
		Properties: req.GetProperties(),
		Inputs:     req.GetInputs(),
	}, nil
}
