package runtime

import (
	"context"
	"errors"
	"io"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/zaki-platform/zaki-agent/runtime/proto"
)

// grpcServer is the plugin side of the boundary: it serves a Runtime over
// gRPC. Each call runs under the gRPC call's context, which carries the
// agent's deadline and ends when the agent cancels or goes away.
type grpcServer struct {
	pb.UnimplementedRuntimeServer
	impl Runtime
}

var _ pb.RuntimeServer = (*grpcServer)(nil)

func (s *grpcServer) Info(ctx context.Context, _ *pb.InfoRequest) (*pb.InfoResponse, error) {
	info, err := s.impl.Info(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return infoToPB(info), nil
}

func (s *grpcServer) ImageExists(ctx context.Context, req *pb.ImageExistsRequest) (*pb.ImageExistsResponse, error) {
	id, err := s.impl.ImageID(ctx, req.GetRef())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.ImageExistsResponse{Exists: id != "", Id: id}, nil
}

func (s *grpcServer) PullImage(req *pb.PullImageRequest, stream pb.Runtime_PullImageServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	err := s.impl.PullImage(ctx, req.GetRef(), func(p PullProgress) {
		if stream.Send(&pb.PullProgress{Ref: p.Ref, Status: p.Status}) != nil {
			cancel() // the agent is gone: no point pulling on for it
		}
	})
	return toStatus(err)
}

func (s *grpcServer) EnsureNetwork(ctx context.Context, req *pb.EnsureNetworkRequest) (*pb.EnsureNetworkResponse, error) {
	if err := s.impl.EnsureNetwork(ctx, networkSpecFromPB(req.GetSpec())); err != nil {
		return nil, toStatus(err)
	}
	return &pb.EnsureNetworkResponse{}, nil
}

func (s *grpcServer) RemoveNetwork(ctx context.Context, req *pb.RemoveNetworkRequest) (*pb.RemoveNetworkResponse, error) {
	if err := s.impl.RemoveNetwork(ctx, req.GetName()); err != nil {
		return nil, toStatus(err)
	}
	return &pb.RemoveNetworkResponse{}, nil
}

func (s *grpcServer) Create(ctx context.Context, req *pb.CreateRequest) (*pb.CreateResponse, error) {
	spec := specFromPB(req.GetSpec())
	if err := s.validate(ctx, &spec); err != nil {
		return nil, toStatus(err)
	}
	id, err := s.impl.Create(ctx, spec)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.CreateResponse{Id: id}, nil
}

func (s *grpcServer) Start(ctx context.Context, req *pb.StartRequest) (*pb.StartResponse, error) {
	if err := s.impl.Start(ctx, req.GetRef()); err != nil {
		return nil, toStatus(err)
	}
	return &pb.StartResponse{}, nil
}

func (s *grpcServer) Stop(ctx context.Context, req *pb.StopRequest) (*pb.StopResponse, error) {
	err := s.impl.Stop(ctx, req.GetRefs(), time.Duration(req.GetTimeoutNs()))
	if err == nil {
		return &pb.StopResponse{}, nil
	}
	if failures, ok := toFailures(err); ok {
		return &pb.StopResponse{Failures: failures}, nil
	}
	return nil, toStatus(err)
}

func (s *grpcServer) Restart(ctx context.Context, req *pb.RestartRequest) (*pb.RestartResponse, error) {
	if err := s.impl.Restart(ctx, req.GetRef(), time.Duration(req.GetTimeoutNs())); err != nil {
		return nil, toStatus(err)
	}
	return &pb.RestartResponse{}, nil
}

func (s *grpcServer) Pause(ctx context.Context, req *pb.PauseRequest) (*pb.PauseResponse, error) {
	if err := s.impl.Pause(ctx, req.GetRef()); err != nil {
		return nil, toStatus(err)
	}
	return &pb.PauseResponse{}, nil
}

func (s *grpcServer) Resume(ctx context.Context, req *pb.ResumeRequest) (*pb.ResumeResponse, error) {
	if err := s.impl.Resume(ctx, req.GetRef()); err != nil {
		return nil, toStatus(err)
	}
	return &pb.ResumeResponse{}, nil
}

func (s *grpcServer) Remove(ctx context.Context, req *pb.RemoveRequest) (*pb.RemoveResponse, error) {
	err := s.impl.Remove(ctx, req.GetRefs(), RemoveOptions{Force: req.GetForce()})
	if err == nil {
		return &pb.RemoveResponse{}, nil
	}
	if failures, ok := toFailures(err); ok {
		return &pb.RemoveResponse{Failures: failures}, nil
	}
	return nil, toStatus(err)
}

func (s *grpcServer) Inspect(ctx context.Context, req *pb.InspectRequest) (*pb.InspectResponse, error) {
	c, err := s.impl.Inspect(ctx, req.GetRef())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.InspectResponse{Container: containerToPB(c)}, nil
}

func (s *grpcServer) List(ctx context.Context, req *pb.ListRequest) (*pb.ListResponse, error) {
	cs, err := s.impl.List(ctx, ListOptions{Labels: mapOrNil(req.GetLabels())})
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.ListResponse{Containers: convertSlice(cs, containerToPB)}, nil
}

// Events and Logs send an empty first message once the stream is open (see
// runtime.proto), then forward until the stream ends. When the agent
// cancels, the call's context ends and so does the underlying stream.

func (s *grpcServer) Events(req *pb.EventsRequest, stream pb.Runtime_EventsServer) error {
	ctx := stream.Context()
	es, err := s.impl.Events(ctx, EventOptions{Labels: mapOrNil(req.GetLabels()), Images: req.GetImages()})
	if err != nil {
		return toStatus(err)
	}
	defer es.Close()
	if err := stream.Send(&pb.EventsResponse{}); err != nil {
		return err
	}
	for {
		ev, err := es.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return toStatus(err)
		}
		if err := stream.Send(&pb.EventsResponse{Event: eventToPB(ev)}); err != nil {
			return err
		}
	}
}

// logChunk is the most output one LogsResponse carries.
const logChunk = 32 << 10

func (s *grpcServer) Logs(req *pb.LogsRequest, stream pb.Runtime_LogsServer) error {
	ctx := stream.Context()
	opts := LogOptions{Follow: req.GetFollow(), Timestamps: req.GetTimestamps()}
	if req.Tail != nil {
		opts.Tail = new(int(req.GetTail()))
	}
	if ns := req.GetSinceUnixNs(); ns != 0 {
		opts.Since = time.Unix(0, ns)
	}
	rc, err := s.impl.Logs(ctx, req.GetRef(), opts)
	if err != nil {
		return toStatus(err)
	}
	defer rc.Close()
	if err := stream.Send(&pb.LogsResponse{}); err != nil {
		return err
	}
	buf := make([]byte, logChunk)
	for {
		n, err := rc.Read(buf)
		if n > 0 {
			if serr := stream.Send(&pb.LogsResponse{Data: append([]byte(nil), buf[:n]...)}); serr != nil {
				return serr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return toStatus(ctx.Err())
			}
			return toStatus(err)
		}
	}
}

func (s *grpcServer) Exec(ctx context.Context, req *pb.ExecRequest) (*pb.ExecResponse, error) {
	res, err := s.impl.Exec(ctx, req.GetRef(), ExecOptions{
		Cmd:       req.GetCmd(),
		Timeout:   time.Duration(req.GetTimeoutNs()),
		MaxOutput: int(req.GetMaxOutput()),
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return execResultToPB(res), nil
}

// validate refuses, before the plugin's runtime sees it, a spec that asks
// for what only some runtimes allow (a node, a port without an address)
// when the plugin's own Info does not allow it. The rest of the checks is
// the runtime's own (every runtime validates what it is given), and a spec
// that asks for none of these costs no Info call.
func (s *grpcServer) validate(ctx context.Context, spec *ContainerSpec) error {
	needsInfo := spec.Placement.Node != "" ||
		slices.ContainsFunc(spec.Ports, func(p PortBinding) bool { return p.HostIP == "" })
	if !needsInfo {
		return nil
	}
	info, err := s.impl.Info(ctx)
	if err != nil {
		return err
	}
	return spec.ValidateOn(info)
}

// Nodes and PrepareDir serve runtime.Cluster when the plugin's runtime
// implements it, and answer codes.Unimplemented otherwise.

func (s *grpcServer) Nodes(ctx context.Context, _ *pb.NodesRequest) (*pb.NodesResponse, error) {
	cl, ok := s.impl.(Cluster)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "the runtime plugin has no nodes (it does not implement runtime.Cluster)")
	}
	nodes, err := cl.Nodes(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.NodesResponse{Nodes: convertSlice(nodes, nodeToPB)}, nil
}

func (s *grpcServer) PrepareDir(ctx context.Context, req *pb.PrepareDirRequest) (*pb.PrepareDirResponse, error) {
	cl, ok := s.impl.(Cluster)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "the runtime plugin has no nodes (it does not implement runtime.Cluster)")
	}
	if err := cl.PrepareDir(ctx, dirSpecFromPB(req)); err != nil {
		return nil, toStatus(err)
	}
	return &pb.PrepareDirResponse{}, nil
}
