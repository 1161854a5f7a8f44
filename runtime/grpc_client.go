package runtime

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"

	pb "github.com/zaki-platform/zaki-agent/runtime/proto"
)

// grpcClient is the agent side of the boundary: a Runtime whose calls go to
// a plugin over gRPC. The caller's ctx is the call's context, so its
// deadline and cancellation reach the plugin; errors come back in runtime's
// classes (fromStatus).
type grpcClient struct {
	conn   *grpc.ClientConn
	client pb.RuntimeClient
}

var (
	_ Runtime = (*grpcClient)(nil)
	_ Cluster = (*grpcClient)(nil)
)

func (c *grpcClient) Info(ctx context.Context) (Info, error) {
	resp, err := c.client.Info(ctx, &pb.InfoRequest{})
	if err != nil {
		return Info{}, fromStatus(ctx, c.conn, err)
	}
	return infoFromPB(resp), nil
}

// ImageID asks the plugin's ImageExists, which carries the ID.
func (c *grpcClient) ImageID(ctx context.Context, ref string) (string, error) {
	resp, err := c.client.ImageExists(ctx, &pb.ImageExistsRequest{Ref: ref})
	if err != nil {
		return "", fromStatus(ctx, c.conn, err)
	}
	return resp.GetId(), nil
}

func (c *grpcClient) PullImage(ctx context.Context, ref string, progress func(PullProgress)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.client.PullImage(ctx, &pb.PullImageRequest{Ref: ref})
	if err != nil {
		return fromStatus(ctx, c.conn, err)
	}
	for {
		p, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fromStatus(ctx, c.conn, err)
		}
		if progress != nil {
			progress(PullProgress{Ref: p.GetRef(), Status: p.GetStatus()})
		}
	}
}

func (c *grpcClient) EnsureNetwork(ctx context.Context, spec NetworkSpec) error {
	_, err := c.client.EnsureNetwork(ctx, &pb.EnsureNetworkRequest{Spec: networkSpecToPB(spec)})
	return fromStatus(ctx, c.conn, err)
}

func (c *grpcClient) RemoveNetwork(ctx context.Context, name string) error {
	_, err := c.client.RemoveNetwork(ctx, &pb.RemoveNetworkRequest{Name: name})
	return fromStatus(ctx, c.conn, err)
}

func (c *grpcClient) Create(ctx context.Context, spec ContainerSpec) (string, error) {
	resp, err := c.client.Create(ctx, &pb.CreateRequest{Spec: specToPB(spec)})
	if err != nil {
		return "", fromStatus(ctx, c.conn, err)
	}
	return resp.GetId(), nil
}

func (c *grpcClient) Start(ctx context.Context, ref string) error {
	_, err := c.client.Start(ctx, &pb.StartRequest{Ref: ref})
	return fromStatus(ctx, c.conn, err)
}

func (c *grpcClient) Stop(ctx context.Context, refs []string, timeout time.Duration) error {
	resp, err := c.client.Stop(ctx, &pb.StopRequest{Refs: refs, TimeoutNs: int64(timeout)})
	if err != nil {
		return fromStatus(ctx, c.conn, err)
	}
	return fromFailures(resp.GetFailures())
}

func (c *grpcClient) Restart(ctx context.Context, ref string, timeout time.Duration) error {
	_, err := c.client.Restart(ctx, &pb.RestartRequest{Ref: ref, TimeoutNs: int64(timeout)})
	return fromStatus(ctx, c.conn, err)
}

func (c *grpcClient) Pause(ctx context.Context, ref string) error {
	_, err := c.client.Pause(ctx, &pb.PauseRequest{Ref: ref})
	return fromStatus(ctx, c.conn, err)
}

func (c *grpcClient) Resume(ctx context.Context, ref string) error {
	_, err := c.client.Resume(ctx, &pb.ResumeRequest{Ref: ref})
	return fromStatus(ctx, c.conn, err)
}

func (c *grpcClient) Remove(ctx context.Context, refs []string, opts RemoveOptions) error {
	resp, err := c.client.Remove(ctx, &pb.RemoveRequest{Refs: refs, Force: opts.Force})
	if err != nil {
		return fromStatus(ctx, c.conn, err)
	}
	return fromFailures(resp.GetFailures())
}

func (c *grpcClient) Inspect(ctx context.Context, ref string) (Container, error) {
	resp, err := c.client.Inspect(ctx, &pb.InspectRequest{Ref: ref})
	if err != nil {
		return Container{}, fromStatus(ctx, c.conn, err)
	}
	return containerFromPB(resp.GetContainer()), nil
}

func (c *grpcClient) List(ctx context.Context, opts ListOptions) ([]Container, error) {
	resp, err := c.client.List(ctx, &pb.ListRequest{Labels: opts.Labels})
	if err != nil {
		return nil, fromStatus(ctx, c.conn, err)
	}
	return convertSlice(resp.GetContainers(), containerFromPB), nil
}

// recvStream is the part of a gRPC client stream the stream readers use.
type recvStream[T any] interface {
	Recv() (T, error)
}

// openStream waits for the first (empty) message of an Events or Logs
// stream, so that an error opening it is the caller's.
func openStream[T any](ctx context.Context, conn *grpc.ClientConn, s recvStream[T]) error {
	_, err := s.Recv()
	if errors.Is(err, io.EOF) {
		return Errorf(ErrUnavailable, "runtime plugin closed the stream before opening it")
	}
	return fromStatus(ctx, conn, err)
}

// streamEnd translates the error that ended a stream read: io.EOF when the
// stream ended, was closed or its ctx is done; ErrUnavailable (from
// fromStatus) when the connection broke.
func streamEnd(ctx context.Context, conn *grpc.ClientConn, err error) error {
	if errors.Is(err, io.EOF) {
		return io.EOF
	}
	err = fromStatus(ctx, conn, err)
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return io.EOF
	}
	return err
}

func (c *grpcClient) Events(ctx context.Context, opts EventOptions) (EventStream, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := c.client.Events(ctx, &pb.EventsRequest{Labels: opts.Labels, Images: opts.Images})
	if err != nil {
		err = fromStatus(ctx, c.conn, err)
	} else {
		err = openStream(ctx, c.conn, stream)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	return &eventStream{ctx: ctx, conn: c.conn, cancel: cancel, stream: stream}, nil
}

type eventStream struct {
	ctx    context.Context
	conn   *grpc.ClientConn
	cancel context.CancelFunc
	stream pb.Runtime_EventsClient
}

func (s *eventStream) Recv() (Event, error) {
	resp, err := s.stream.Recv()
	if err != nil {
		return Event{}, streamEnd(s.ctx, s.conn, err)
	}
	return eventFromPB(resp.GetEvent()), nil
}

func (s *eventStream) Close() error {
	s.cancel()
	return nil
}

func (c *grpcClient) Logs(ctx context.Context, ref string, opts LogOptions) (io.ReadCloser, error) {
	ctx, cancel := context.WithCancel(ctx)
	req := &pb.LogsRequest{Ref: ref, Follow: opts.Follow, Timestamps: opts.Timestamps}
	if opts.Tail != nil {
		req.Tail = new(int64(*opts.Tail))
	}
	if !opts.Since.IsZero() {
		req.SinceUnixNs = opts.Since.UnixNano()
	}
	stream, err := c.client.Logs(ctx, req)
	if err != nil {
		err = fromStatus(ctx, c.conn, err)
	} else {
		err = openStream(ctx, c.conn, stream)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	return &logReader{ctx: ctx, conn: c.conn, cancel: cancel, stream: stream}, nil
}

// logReader reads a Logs stream as bytes. Read and Close may be called from
// different goroutines (Close ends a blocked Read).
type logReader struct {
	ctx    context.Context
	conn   *grpc.ClientConn
	cancel context.CancelFunc
	stream pb.Runtime_LogsClient

	mu  sync.Mutex // serializes Read
	buf []byte     // the rest of the last chunk
	err error      // the error that ended the stream, once it ended
}

func (r *logReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.buf) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		resp, err := r.stream.Recv()
		if err != nil {
			r.err = streamEnd(r.ctx, r.conn, err)
			return 0, r.err
		}
		r.buf = resp.GetData()
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *logReader) Close() error {
	r.cancel()
	return nil
}

func (c *grpcClient) Exec(ctx context.Context, ref string, opts ExecOptions) (ExecResult, error) {
	resp, err := c.client.Exec(ctx, &pb.ExecRequest{
		Ref:       ref,
		Cmd:       opts.Cmd,
		TimeoutNs: int64(opts.Timeout),
		MaxOutput: int64(opts.MaxOutput),
	})
	if err != nil {
		return ExecResult{}, fromStatus(ctx, c.conn, err)
	}
	return execResultFromPB(resp), nil
}

// Nodes and PrepareDir are ErrUnimplemented when the plugin's runtime does
// not implement Cluster.

func (c *grpcClient) Nodes(ctx context.Context) ([]Node, error) {
	resp, err := c.client.Nodes(ctx, &pb.NodesRequest{})
	if err != nil {
		return nil, fromStatus(ctx, c.conn, err)
	}
	return convertSlice(resp.GetNodes(), nodeFromPB), nil
}

func (c *grpcClient) PrepareDir(ctx context.Context, spec DirSpec) error {
	_, err := c.client.PrepareDir(ctx, dirSpecToPB(spec))
	return fromStatus(ctx, c.conn, err)
}
