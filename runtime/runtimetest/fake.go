package runtimetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	goruntime "runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// Fake is an in-memory runtime.Runtime, safe for concurrent use. It keeps
// the contract of runtime.Runtime and records what it was asked; its hooks
// (fake_faults.go, fake_hooks.go) let a test inject failures and make
// things happen behind the caller's back.
//
// What it models, and how:
//   - every method validates its input first (ErrInvalidArgument, counted
//     but touching nothing), then gives up on a done ctx (ErrTimeout for a
//     deadline, context.Canceled otherwise), then fails with ErrUnavailable
//     while the engine is down (Down), then applies injected faults;
//   - containers are referred to by ID (64 hex digits), name, or a unique ID
//     prefix; a taken name is ErrAlreadyExists; a missing image or network
//     is ErrNotFound at Create;
//   - Inspect and List read the spec back as an engine does: sizes as byte
//     counts ("2147483648"), Env dropped, tmpfs sorted by path, an empty
//     port protocol as "tcp", a memory limit without a swap limit with
//     twice as much memory plus swap (docker's default); other unset
//     fields stay unset, but for the OCI runtime, which reads back as
//     "runc" (the default) when none was asked for;
//   - it knows the OCI runtimes FakeOCIRuntimes; a container asking for
//     another is ErrUnavailable at Create, as the CLI plugins answer;
//   - Start writes "fake: <name> started" to the container's log and, with
//     a healthcheck, makes it "healthy" at once (there is nothing to probe);
//     Stop makes the process exit 0; a forced Remove of a running container
//     exits 137; the restart policy applies to deaths the caller did not
//     ask for (Kill, Exit, OOM), at once and synchronously;
//   - every event goes to every matching subscriber through an unbounded
//     queue: the fake never blocks on a slow reader and never drops events.
type Fake struct {
	now func() time.Time

	mu         sync.Mutex
	containers map[string]*fakeContainer // by ID
	names      map[string]string         // name -> ID
	images     map[string]string         // normalized ref -> image ID
	rebuilds   int                       // RebuildImage's count, for new IDs
	// noImageEvents: an engine that streams no image events
	// (WithoutImageEvents).
	noImageEvents bool
	pullable      map[string]bool // normalized refs PullImage can fetch
	networks      map[string]runtime.NetworkSpec
	streams       map[*eventStream]struct{}
	calls         map[string]int
	faults        map[string][]*faultState
	seq           int // containers created so far
	down          bool
	// unenforced are the fields Info lists as unenforced (WithUnenforced);
	// nodes, the nodes of a FakeCluster (nil for a plain Fake). Both are
	// set at construction; the nodes' state is guarded by mu.
	unenforced []string
	nodes      map[string]*fakeNode
	downCh     chan struct{} // closed when the engine goes down, replaced when it comes up
}

var _ runtime.Runtime = (*Fake)(nil)

// FakeOption configures NewFake.
type FakeOption func(*Fake)

// FakeOCIRuntimes are the OCI runtimes a Fake knows (Info.OCIRuntimes),
// the first its default.
var FakeOCIRuntimes = []string{"runc", "runsc"}

// DefaultFakeImages are the images a Fake holds unless WithImages says
// otherwise: the gateway stand-in.
var DefaultFakeImages = []string{testenv.StubImage}

// DefaultFakePullable are the references a Fake can pull unless
// WithPullable says otherwise: the production default image, so that an
// agent configured with its defaults works against the fake.
var DefaultFakePullable = []string{"alpine/openclaw:latest"}

// WithImages sets the images present at start, replacing
// DefaultFakeImages.
func WithImages(refs ...string) FakeOption {
	return func(f *Fake) {
		f.images = map[string]string{}
		for _, r := range refs {
			f.images[normalizeImage(r)] = imageID(r)
		}
	}
}

// WithPullable sets the references PullImage can fetch, replacing
// DefaultFakePullable. Pulling any other reference is ErrNotFound.
func WithPullable(refs ...string) FakeOption {
	return func(f *Fake) {
		f.pullable = map[string]bool{}
		for _, r := range refs {
			f.pullable[normalizeImage(r)] = true
		}
	}
}

// WithoutImageEvents makes a fake that streams no image events, and says
// so in Info.
func WithoutImageEvents() FakeOption {
	return func(f *Fake) { f.noImageEvents = true }
}

// WithClock sets the clock the fake stamps containers and events with
// (time.Now by default).
func WithClock(now func() time.Time) FakeOption {
	return func(f *Fake) { f.now = now }
}

// NewFake returns a fake engine holding DefaultFakeImages, able to pull
// DefaultFakePullable, with the built-in networks bridge, host and none
// and no containers.
func NewFake(opts ...FakeOption) *Fake {
	f := &Fake{
		now:        time.Now,
		containers: map[string]*fakeContainer{},
		names:      map[string]string{},
		networks:   map[string]runtime.NetworkSpec{},
		streams:    map[*eventStream]struct{}{},
		calls:      map[string]int{},
		faults:     map[string][]*faultState{},
		downCh:     make(chan struct{}),
	}
	WithImages(DefaultFakeImages...)(f)
	WithPullable(DefaultFakePullable...)(f)
	for _, o := range opts {
		o(f)
	}
	return f
}

// FakeEngineVersion is the EngineVersion the fake's Info reports.
const FakeEngineVersion = "fake-1.0"

// Info reports the fake engine.
func (f *Fake) Info(ctx context.Context) (runtime.Info, error) {
	if err := f.begin(ctx, "Info", nil, ""); err != nil {
		return runtime.Info{}, fmt.Errorf("info: %w", err)
	}
	return runtime.Info{
		Runtime:         "fake",
		EngineVersion:   FakeEngineVersion,
		APIVersion:      "1",
		OS:              "linux",
		Arch:            goruntime.GOARCH,
		CgroupVersion:   "2",
		SecurityOptions: []string{"seccomp", "no-new-privileges"},
		ImageEvents:     !f.noImageEvents,
		OCIRuntimes:     slices.Clone(FakeOCIRuntimes),
		Unenforced:      f.validationInfo().Unenforced,
		Capabilities:    f.validationInfo().Capabilities,
	}, nil
}

// ctxErr is ctx's error in the runtime's terms: a passed deadline is
// ErrTimeout, a cancellation stays context.Canceled.
func ctxErr(ctx context.Context) error {
	err := ctx.Err()
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return runtime.Errorf(runtime.ErrTimeout, "%w", err)
	}
	return err
}

// newID returns a random container ID: 64 hex digits, like docker's.
func newID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// lookup resolves a container reference as docker does: full ID, then
// name, then a unique ID prefix. f.mu must be held.
func (f *Fake) lookup(ref string) (*fakeContainer, error) {
	if c, ok := f.containers[ref]; ok {
		return c, nil
	}
	if id, ok := f.names[ref]; ok {
		return f.containers[id], nil
	}
	var found *fakeContainer
	for id, c := range f.containers {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, runtime.Errorf(runtime.ErrInvalidArgument, "container reference %q is an ambiguous ID prefix", ref)
			}
			found = c
		}
	}
	if found == nil {
		return nil, runtime.Errorf(runtime.ErrNotFound, "no such container %q", ref)
	}
	return found, nil
}

// matchLabels reports whether labels carry every selector: key=value, or
// the key alone when the selector's value is "".
func matchLabels(labels, selector map[string]string) bool {
	for k, v := range selector {
		got, ok := labels[k]
		if !ok || (v != "" && got != v) {
			return false
		}
	}
	return true
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func cloneSlice[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append([]T(nil), s...)
}

// cloneSpec deep-copies a spec, so that nothing the fake hands out or
// keeps is shared with its caller.
func cloneSpec(s runtime.ContainerSpec) runtime.ContainerSpec {
	s.Cmd = cloneSlice(s.Cmd)
	s.Env = cloneMap(s.Env)
	s.Labels = cloneMap(s.Labels)
	s.Resources.Ulimits = cloneSlice(s.Resources.Ulimits)
	s.Security.Tmpfs = cloneSlice(s.Security.Tmpfs)
	s.Security.CapDrop = cloneSlice(s.Security.CapDrop)
	s.Security.CapAdd = cloneSlice(s.Security.CapAdd)
	s.Ports = cloneSlice(s.Ports)
	s.Mounts = cloneSlice(s.Mounts)
	if s.Healthcheck != nil {
		h := *s.Healthcheck
		h.Test = cloneSlice(h.Test)
		s.Healthcheck = &h
	}
	return s
}

// readBack returns spec as an engine reports it after create: sizes as
// byte counts (log size too; a memory limit without a swap limit gets twice as much
// memory plus swap, as docker does), Env dropped, tmpfs sorted by path, the
// port protocol set. spec has passed Validate.
func readBack(spec runtime.ContainerSpec) runtime.ContainerSpec {
	s := cloneSpec(spec)
	s.Env = nil
	if s.Resources.Memory != "" {
		n, _ := runtime.ParseBytes(s.Resources.Memory)
		s.Resources.Memory = fmt.Sprint(n)
		if s.Resources.MemorySwap == "" {
			s.Resources.MemorySwap = fmt.Sprint(2 * n) // docker's default
		}
	}
	if s.Resources.MemorySwap != "" && s.Resources.MemorySwap != "-1" {
		n, _ := runtime.ParseBytes(s.Resources.MemorySwap)
		s.Resources.MemorySwap = fmt.Sprint(n)
	}
	if s.Log.MaxSize != "" {
		n, _ := runtime.ParseBytes(s.Log.MaxSize)
		s.Log.MaxSize = fmt.Sprint(n)
	}
	if s.OCIRuntime == "" {
		s.OCIRuntime = FakeOCIRuntimes[0]
	}
	sort.SliceStable(s.Security.Tmpfs, func(i, j int) bool { return s.Security.Tmpfs[i].Path < s.Security.Tmpfs[j].Path })
	for i := range s.Ports {
		if s.Ports[i].Protocol == "" {
			s.Ports[i].Protocol = "tcp"
		}
	}
	return s
}
