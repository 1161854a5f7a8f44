package swarm

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/zaki-platform/zaki-agent/internal/ctxwait"
	"github.com/zaki-platform/zaki-agent/plugins/internal/engineapi"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// Defaults of Config.
const (
	DefaultSocket       = engineapi.DefaultSocket
	DefaultPrepareImage = "zaki/gateway-stub:latest"
	DefaultPoll         = time.Second
)

// Config configures a Runtime.
type Config struct {
	// Socket is the Unix socket of a manager of the swarm (DefaultSocket
	// when empty).
	Socket string
	// PrepareImage is the image PrepareDir's job runs: it must be on every
	// node (provisioning) and hold /gateway-stub, whose "-exec mkdir"
	// makes the directory (DefaultPrepareImage when empty).
	PrepareImage string
	// Poll is how often Events polls the tasks and the lifecycle calls
	// look at them while they wait (DefaultPoll when zero).
	Poll time.Duration
	// Logger gets one debug line per engine call (never a body) and the
	// plugin's own warnings; nil logs nothing.
	Logger *slog.Logger
}

// Runtime is the swarm runtime: runtime.Runtime and runtime.Cluster on a
// swarm manager's Engine API.
type Runtime struct {
	api          *engineapi.Client
	socket       string
	prepareImage string
	poll         time.Duration
	log          *slog.Logger
}

var (
	_ runtime.Runtime = (*Runtime)(nil)
	_ runtime.Cluster = (*Runtime)(nil)
)

// New returns a Runtime of the manager cfg names. It does not connect:
// Info is the health probe.
func New(cfg Config) *Runtime {
	if cfg.Socket == "" {
		cfg.Socket = DefaultSocket
	}
	if cfg.PrepareImage == "" {
		cfg.PrepareImage = DefaultPrepareImage
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runtime{
		api:          engineapi.New(engineapi.Config{Socket: cfg.Socket, Logger: cfg.Logger}),
		socket:       cfg.Socket,
		prepareImage: cfg.PrepareImage,
		poll:         cfg.Poll,
		log:          log,
	}
}

// Close closes the client's idle connections.
func (r *Runtime) Close() error { return r.api.Close() }

// unenforced are the spec fields a service cannot express on API 1.41
// (docs/swarm.md): node provisioning must enforce them, or the agent
// refuses a config that sets them.
var unenforced = []string{runtime.FieldNoNewPrivileges, runtime.FieldMemorySwap, runtime.FieldCPUShares, runtime.FieldHostIP}

// info is the part of Info that does not depend on the engine.
func info() runtime.Info {
	return runtime.Info{Runtime: "swarm", Unenforced: slices.Clone(unenforced), Capabilities: []string{runtime.CapPlacement}}
}

// Info reports the manager's engine; ErrUnavailable when it does not
// answer or is not an active manager of a swarm.
func (r *Runtime) Info(ctx context.Context) (runtime.Info, error) {
	ei, err := r.api.Info(ctx)
	if err != nil {
		return runtime.Info{}, wrap(err, "info")
	}
	if ei.Swarm.LocalNodeState != "active" || !ei.Swarm.ControlAvailable {
		return runtime.Info{}, runtime.Errorf(runtime.ErrUnavailable,
			"the engine at %s is not a manager of an active swarm (swarm state %q, manager %v)", r.socket, ei.Swarm.LocalNodeState, ei.Swarm.ControlAvailable)
	}
	v, err := r.api.Version(ctx)
	if err != nil {
		return runtime.Info{}, wrap(err, "version")
	}
	out := info()
	out.EngineVersion = ei.ServerVersion
	out.APIVersion = r.api.APIVersion()
	out.OS, out.Arch = v.Os, v.Arch
	out.CgroupVersion = ei.CgroupVersion
	for _, o := range ei.SecurityOptions {
		// "name=seccomp,profile=default": the name alone, as the other
		// runtimes report it
		if n, ok := cutOpt(o); ok {
			out.SecurityOptions = append(out.SecurityOptions, n)
		}
	}
	return out, nil
}

// cutOpt returns the name of one of the engine's security options.
func cutOpt(o string) (string, bool) {
	for _, kv := range strings.Split(o, ",") {
		if n, ok := strings.CutPrefix(kv, "name="); ok {
			return n, true
		}
	}
	return "", false
}

// wrap adds what was done to an error, keeping its class (a passed
// deadline is ErrTimeout, see runtime.Class).
func wrap(err error, what string) error { return fmt.Errorf("%s: %w", what, err) }

// notFound is the error of a container that is not there.
func notFound(ref string) error {
	return runtime.Errorf(runtime.ErrNotFound, "no such container %q", ref)
}

// service returns the service of container ref (ID, unique ID prefix or
// name); ErrNotFound when there is none, or the service there is not one
// of the plugin's.
func (r *Runtime) service(ctx context.Context, ref string) (engineapi.Service, error) {
	if err := runtime.ValidateRef(ref); err != nil {
		return engineapi.Service{}, err
	}
	s, err := r.api.Service(ctx, serviceName(ref))
	if runtime.Class(err) == runtime.ErrNotFound {
		return s, notFound(ref)
	}
	if err != nil {
		return s, wrap(err, "inspect "+ref)
	}
	name, ours := s.Spec.Labels[LabelName]
	if !ours || (name != ref && !strings.HasPrefix(s.ID, ref)) {
		return s, notFound(ref)
	}
	return s, nil
}

// tasks returns the tasks of the services of ids, by service ID.
func (r *Runtime) tasks(ctx context.Context, ids ...string) (map[string][]engineapi.Task, error) {
	out := map[string][]engineapi.Task{}
	const chunk = 100 // services per call: the filter goes in the URL
	for i := 0; i < len(ids); i += chunk {
		part := ids[i:min(i+chunk, len(ids))]
		ts, err := r.api.Tasks(ctx, engineapi.Filters{"service": part})
		if runtime.Class(err) == runtime.ErrNotFound && len(part) > 1 {
			// a service removed since it was listed: the engine refuses
			// the whole filter, so ask for each one alone
			ts, err = r.eachTasks(ctx, part)
		}
		if runtime.Class(err) == runtime.ErrNotFound {
			continue // the one service is gone: it has no tasks
		}
		if err != nil {
			return nil, wrap(err, "list tasks")
		}
		for _, t := range ts {
			out[t.ServiceID] = append(out[t.ServiceID], t)
		}
	}
	return out, nil
}

// eachTasks lists the tasks of each of ids in a call of its own,
// skipping the services that are gone.
func (r *Runtime) eachTasks(ctx context.Context, ids []string) ([]engineapi.Task, error) {
	var out []engineapi.Task
	for _, id := range ids {
		ts, err := r.api.Tasks(ctx, engineapi.Filters{"service": {id}})
		if runtime.Class(err) == runtime.ErrNotFound {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, ts...)
	}
	return out, nil
}

// nodes returns the swarm's nodes by ID.
func (r *Runtime) nodes(ctx context.Context) (map[string]nodeInfo, error) {
	ns, err := r.api.Nodes(ctx, nil)
	if err != nil {
		return nil, wrap(err, "list nodes")
	}
	out := make(map[string]nodeInfo, len(ns))
	for _, n := range ns {
		out[n.ID] = nodeInfo{name: n.Spec.Labels[NodeNameLabel], addr: n.Status.Addr}
	}
	return out, nil
}

// update reads the service of ref, lets edit change it (edit returns
// false to leave it as it is) and sends it with the version it read,
// again from the read when another update came between (the engine
// updates a new service once by itself, see engineapi.UpdateService). It
// returns the service as sent (or as read, when edit left it).
func (r *Runtime) update(ctx context.Context, ref string, edit func(*engineapi.Service) bool) (engineapi.Service, error) {
	for attempt := 0; ; attempt++ {
		s, err := r.service(ctx, ref)
		if err != nil {
			return s, err
		}
		if !edit(&s) {
			return s, nil
		}
		_, err = r.api.UpdateService(ctx, s.ID, s.Version, s.Spec)
		if err == nil {
			return s, nil
		}
		if runtime.Class(err) != runtime.ErrConflict || attempt >= 5 {
			return s, wrap(err, "update "+ref)
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return s, err
		}
	}
}

// sleep waits d or until ctx ends (its error).
func sleep(ctx context.Context, d time.Duration) error {
	if ctxwait.Sleep(ctx, d) {
		return nil
	}
	return wrap(ctx.Err(), "wait")
}

// now is the time a label records.
func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }
