package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
	"github.com/zaki-platform/zaki-agent/internal/version"
	"github.com/zaki-platform/zaki-agent/registry"
	"github.com/zaki-platform/zaki-agent/runtime"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

// Options are the agent's dependencies that are not reloadable settings.
type Options struct {
	// StateDir holds hash.key and instances/ (the users' data); the
	// registry, opened by the caller, lives there too. Required.
	StateDir string
	// RuntimeName names the runtime in health reports ("docker").
	RuntimeName string
	Logger      *slog.Logger
	// Now is the clock (tests inject one); time.Now when nil.
	Now func() time.Time
	// PluginRestarts, when set, reports how often the runtime plugin was
	// relaunched (for health and metrics).
	PluginRestarts func() int
	// Metrics, when set, are the metrics to record into (so that the
	// registry, opened first, can record its writes); new ones when nil.
	Metrics *Metrics
	// PortInUse, when set, replaces the check that another process holds
	// a host port (binding it): for tests over a fake runtime, whose
	// stand-in gateways listen on the very ports the agent hands out.
	PortInUse func(addr string, port int) bool
	// AccountsDir holds the host's passwd, group, subuid and subgid files,
	// whose ids are never handed to a tenant; /etc when empty (tests point
	// it elsewhere).
	AccountsDir string
	// NodePoll is how often a cluster runtime is asked for its nodes
	// (cluster.go); nodePoll when 0 (tests make it long, and drive the
	// refresh themselves).
	NodePoll time.Duration
}

// Agent owns the per-user instances of one host. Create it with New, run
// its loops with Run, and call its methods from any goroutine.
type Agent struct {
	cfg     atomic.Pointer[Config] // replaced whole by Reload
	rt      runtime.Runtime
	reg     *registry.Registry
	log     *slog.Logger
	now     func() time.Time
	hash    hasher
	rtName  string
	labels  labelKeys
	dataDir string // <stateDir>/instances
	// containerImages maps the ID of each container of an instance to the
	// ID of its image (from inspect, or from the agent's own create), so
	// that a live state rebuilt from events (which do not tell) has it.
	containerImages containerImages
	// imageEvents says the runtime streams image events (Info.ImageEvents,
	// asked at each subscription): the image cache is then trusted on
	// cold ensures too.
	imageEvents atomic.Bool
	metrics     *Metrics
	restarts    func() int

	// cluster is the runtime's Cluster calls when it places instances on
	// nodes, nil for a local runtime; facts is what the agent learnt of
	// the runtime at start, nodes its nodes as last asked (cluster.go).
	cluster runtime.Cluster
	facts   atomic.Pointer[runtimeFacts]
	nodes   nodeCache

	// probe checks that an address serves (a field so that unit tests over
	// the fake runtime, where nothing listens, can stand in for it).
	probe func(ctx context.Context, addr string) error
	// portInUse tells whether another process holds a host port.
	portInUse func(addr string, port int) bool
	// accountsDir is where the host's account files are (see uids.go).
	accountsDir string
	// freeSpace tells the free space of a file system (a field so that
	// unit tests can stand in for a full disk); usage is the last
	// measurement of each user's data (disk.go).
	freeSpace func(path string) (uint64, error)
	usage     diskUsage

	locks  userLocks
	ports  portHolds
	engine chan struct{} // bounds engine operations in flight
	execs  execSlots     // bounds the execs running
	events broker
	images imagePuller

	// live is the engine's view of each user's container, fed by the event
	// stream and by resyncs; see reconcile.go.
	mu      sync.RWMutex
	live    map[string]liveState
	seq     atomic.Uint64 // bumped by every change of live
	urls    atomic.Pointer[urlCache]
	netDone atomic.Bool // the instance network exists
	netMu   sync.Mutex  // one EnsureNetwork at a time

	// echo holds, by container ID, the events the engine owes the agent
	// for its own calls (see echoes); guarded by mu. echoWait bounds the
	// wait for each (a field for the tests).
	echo     map[string]*echoes
	echoWait time.Duration

	runtimeUp  atomic.Bool
	outage     outageState  // see outage.go
	lastResync atomic.Int64 // unix ms of the last full resync
	loops      loopWatch
	ready      chan struct{}
	readyOnce  sync.Once
	// confirmed holds the users whose container the engine was asked
	// about before the first reconciliation (confirmUser).
	confirmed sync.Map
	startedAt time.Time
	bg        context.Context // ends with Run: owns background work (pulls)
	bgCancel  context.CancelFunc
}

// New returns an agent for cfg, driving rt and recording in reg. It
// creates the state dir's instances/ folder and the hash key when they do
// not exist.
func New(cfg Config, rt runtime.Runtime, reg *registry.Registry, opts Options) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if !filepath.IsAbs(opts.StateDir) {
		return nil, fmt.Errorf("state dir %q: want an absolute path", opts.StateDir)
	}
	if err := os.MkdirAll(opts.StateDir, 0o750); err != nil {
		return nil, err
	}
	h, err := loadHashKey(opts.StateDir)
	if err != nil {
		return nil, err
	}
	dataDir := filepath.Join(opts.StateDir, "instances")
	if err := os.MkdirAll(dataDir, 0o711); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	a := &Agent{
		reg:      reg,
		log:      opts.Logger,
		now:      opts.Now,
		hash:     h,
		rtName:   opts.RuntimeName,
		labels:   newLabelKeys(cfg.Instance.LabelPrefix),
		dataDir:  dataDir,
		restarts: opts.PluginRestarts,
		engine:   make(chan struct{}, cfg.MaxEngineOps),
		live:     make(map[string]liveState),
		echo:     make(map[string]*echoes),
		echoWait: echoWait,
		ready:    make(chan struct{}),
		probe:    probe,
	}
	a.freeSpace = freeSpace
	a.portInUse = opts.PortInUse
	if a.portInUse == nil {
		a.portInUse = portInUse
	}
	a.accountsDir = cmp.Or(opts.AccountsDir, "/etc")
	a.nodes.poll = cmp.Or(opts.NodePoll, nodePoll)
	a.cfg.Store(&cfg)
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.warnFixedUser(nil, &cfg)
	if a.now == nil {
		a.now = time.Now
	}
	if a.restarts == nil {
		a.restarts = func() int { return 0 }
	}
	a.startedAt = a.now()
	a.metrics = opts.Metrics
	if a.metrics == nil {
		a.metrics = NewMetrics()
	}
	a.metrics.attach(a)
	ir := instrument(rt, a.metrics, seconds(cfg.CallTimeoutSeconds))
	a.rt = ir
	// At most 30 s: with the plugin's launch (30 s at most), within the
	// unit's TimeoutStartSec (90 s).
	if err := a.detectCluster(rt, ir, min(seconds(cfg.CallTimeoutSeconds), 30*time.Second)); err != nil {
		return nil, err
	}
	if err := cfg.checkRuntime(a.facts.Load()); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	a.warnBindAddress(nil, &cfg)
	a.images.a, a.images.refresh = a, make(chan struct{}, 1)
	a.bg, a.bgCancel = context.WithCancel(context.Background())
	if err := a.fixModes(opts.StateDir); err != nil {
		return nil, err
	}
	return a, nil
}

// Config returns the configuration the agent runs with.
func (a *Agent) Config() Config { return *a.cfg.Load() }

// conf returns the current configuration; callers keep the pointer for the
// whole of one decision, so that a reload never splits one.
func (a *Agent) conf() *Config { return a.cfg.Load() }

// Ready is closed once the first reconciliation is done. The agent
// answers before that (see confirmUser): its daemon serves and says
// READY=1 as soon as the plugin is up.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// reconciled reports whether the first reconciliation is done.
func (a *Agent) reconciled() bool {
	select {
	case <-a.ready:
		return true
	default:
		return false
	}
}

// The API's types are the agent's own (see package socketapi).
type (
	Instance     = socketapi.Instance
	InstanceSpec = socketapi.InstanceSpec
	Resources    = socketapi.Resources
	Event        = socketapi.Event
	PruneRequest = socketapi.PruneRequest
	PruneResult  = socketapi.PruneResult
	PruneItem    = socketapi.PruneItem
	Health       = socketapi.Health
	Counts       = socketapi.Counts
)

// The states of an instance, and the outcomes of an ensure.
const (
	StateRunning     = socketapi.StateRunning
	StatePaused      = socketapi.StatePaused
	StateStopped     = socketapi.StateStopped
	StateMissing     = socketapi.StateMissing
	OutcomeReused    = socketapi.OutcomeReused
	OutcomeResumed   = socketapi.OutcomeResumed
	OutcomeStarted   = socketapi.OutcomeStarted
	OutcomeCreated   = socketapi.OutcomeCreated
	OutcomeRecreated = socketapi.OutcomeRecreated
)

func (a *Agent) instance(rec registry.Record) Instance {
	a.mu.RLock()
	ls, ok := a.live[rec.UserID]
	a.mu.RUnlock()
	in := instanceOf(rec, ls, ok || !a.reconciled(), a.urlCache(), a.images.idsView())
	in.DataBytes = a.usage.bytes(rec.UserID)
	if a.cluster != nil {
		a.placeInstance(&in, ls)
	}
	return in
}

// instanceOf is the Instance of rec, whose live state is ls (ok is false
// when the engine has no container for it), its URL from urls. It is
// stale too when its container's image is not the one its image reference
// resolves to now (ids: the image cache, read without asking the engine).
// Before the first reconciliation, a user whose container the engine has
// not yet been asked about has no live state (ls.ID is ""; ok is true):
// its state is the one last recorded.
func instanceOf(rec registry.Record, ls liveState, ok bool, urls *urlCache, ids map[string]string) Instance {
	state := StateMissing
	switch {
	case ok && ls.exists():
		state = stateName(ls)
	case ok && ls.seq == 0:
		if knownState(rec.State) {
			state = rec.State
		}
		ok = false
	}
	in := Instance{
		UserID:        rec.UserID,
		ContainerName: rec.ContainerName,
		ContainerID:   rec.ContainerID,
		Image:         rec.Image,
		State:         state,
		Port:          rec.Port,
		URL:           urls.url(rec.Port),
		CreatedAtMs:   rec.CreatedAtMs,
		LastUsedAtMs:  rec.LastUsedAtMs,
		ConfigHash:    rec.ConfigHash,
		Stale:         rec.Renew || rec.DesiredHash != "" && rec.DesiredHash != rec.ConfigHash,
		Labels:        rec.Labels,
	}
	if ok {
		in.Health = ls.Health
		in.ImageID = ls.ImageID
		if tag := ids[rec.Image]; tag != "" && ls.ImageID != "" && tag != ls.ImageID {
			in.Stale = true
		}
	}
	return in
}

// knownState reports whether s is a state an instance may be in.
func knownState(s string) bool {
	return s == StateRunning || s == StatePaused || s == StateStopped || s == StateMissing
}

// Get returns userID's instance; ErrNotFound when it has none.
func (a *Agent) Get(ctx context.Context, userID string) (Instance, error) {
	if err := validateUserID(userID); err != nil {
		return Instance{}, err
	}
	rec, ok := a.reg.Get(userID)
	if !ok {
		return Instance{}, notFound(userID)
	}
	if err := a.confirmUser(ctx, userID); err != nil {
		return Instance{}, err
	}
	return a.instance(rec), nil
}

// List returns every instance in user ID order, filtered by state when
// state is not "". The Labels maps of the result are the registry's own:
// read them, never change them.
func (a *Agent) List(ctx context.Context, state string) ([]Instance, error) {
	out := make([]Instance, 0, a.reg.Len())
	err := a.EachInstance(state, func(in *Instance) { out = append(out, *in) })
	return out, err
}

// EachInstance calls fn with every instance in user ID order, only those
// in state unless it is "" (else as List: an invalid state is an error).
// It is List without the copies, for a caller that encodes as it goes
// (the API's list): fn runs under one read lock of the live view, so it
// must be quick and must not call the agent; the Instance it gets is
// reused from one call to the next, and its Labels map is the registry's
// own: read it, never keep or change it.
func (a *Agent) EachInstance(state string, fn func(*Instance)) error {
	switch state {
	case "", StateRunning, StatePaused, StateStopped, StateMissing:
	default:
		return invalid("invalid state %q: want running, paused, stopped or missing", state)
	}
	// One pass over the registry's snapshot under one read lock of the
	// live view: with 10,000 instances, copying every record (List) and
	// locking per record were most of the cost of a list.
	urls := a.urlCache()
	ids := a.images.idsView()
	pending := !a.reconciled()
	var in Instance
	a.mu.RLock()
	defer a.mu.RUnlock()
	a.reg.Each(func(rec registry.Record) bool {
		ls, ok := a.live[rec.UserID]
		in = instanceOf(rec, ls, ok || pending, urls, ids)
		in.DataBytes = a.usage.bytes(rec.UserID)
		if a.cluster != nil {
			a.placeInstance(&in, ls)
		}
		if state == "" || in.State == state {
			fn(&in)
		}
		return true
	})
	return nil
}

// Touch marks userID's instance as used now, pushing idle pruning back.
// A paused instance is thawed too, and answered once its port answers,
// with outcome "resumed". With a cluster runtime, a user whose node is
// not ready is refused (ErrNodeUnavailable), as its ensure is.
func (a *Agent) Touch(ctx context.Context, userID string) (Instance, error) {
	if err := validateUserID(userID); err != nil {
		return Instance{}, err
	}
	if a.cluster != nil {
		// Refused while its node is not ready, as an ensure, on the nodes
		// as last asked (no runtime call), its last use left as it was.
		if _, ok := a.reg.Get(userID); !ok {
			return Instance{}, notFound(userID)
		}
		if err := a.refuseNodeDown(userID, a.liveOf(userID)); err != nil {
			return Instance{}, err
		}
	}
	if a.liveOf(userID).paused() {
		unlock := a.locks.lock(userID)
		defer unlock()
		rec, ok := a.reg.Get(userID)
		if !ok {
			return Instance{}, notFound(userID)
		}
		a.reg.Touch(userID, a.now().UnixMilli())
		if ls := a.liveOf(userID); ls.paused() && ls.ID == rec.ContainerID {
			thawed, err := a.thaw(ctx, rec)
			if err != nil {
				return Instance{}, err
			}
			in := a.instance(a.mustGet(userID, rec))
			if thawed {
				in.Outcome = OutcomeResumed
			}
			return in, nil
		}
		return a.instance(a.mustGet(userID, rec)), nil
	}
	if !a.reg.Touch(userID, a.now().UnixMilli()) {
		return Instance{}, notFound(userID)
	}
	return a.Get(ctx, userID)
}

// Subscribe returns a stream of lifecycle events; buf events are buffered
// before a slow reader starts losing them. Close it when done.
func (a *Agent) Subscribe(buf int) *Subscription { return a.events.subscribe(buf) }

func (a *Agent) publish(e Event) {
	if e.TimeMs == 0 {
		e.TimeMs = a.now().UnixMilli()
	}
	a.events.publish(e)
}

// Health asks the runtime for its engine's info and reports. Its Status
// is HealthUnavailable when the runtime does not answer.
func (a *Agent) Health(ctx context.Context) Health {
	h := Health{
		Status: socketapi.HealthOK,
		Agent: socketapi.AgentHealth{
			Version:      version.Version,
			Pid:          os.Getpid(),
			StartedAtMs:  a.startedAt.UnixMilli(),
			LastResyncMs: a.lastResync.Load(),
			Loops:        socketapi.LoopsOK,
		},
		Runtime: socketapi.RuntimeHealth{Name: a.rtName, Restarts: a.restarts()},
		Counts:  a.Counts(),
	}
	select {
	case <-a.ready:
		h.Agent.Ready = true
	default:
		h.Status = socketapi.HealthDegraded
	}
	if wedged := a.loops.wedged(a.loopBound()); wedged != "" {
		h.Agent.Loops = wedged
		h.Status = socketapi.HealthDegraded
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := a.rt.Info(ctx)
	if err != nil {
		h.Status = socketapi.HealthUnavailable
		h.Runtime.Error = err.Error()
		return h
	}
	h.Runtime.Up = true
	h.Runtime.Engine = &socketapi.EngineInfo{
		Runtime: info.Runtime, EngineVersion: info.EngineVersion, APIVersion: info.APIVersion,
		OS: info.OS, Arch: info.Arch, CgroupVersion: info.CgroupVersion, SecurityOptions: info.SecurityOptions,
	}
	return h
}

// Counts returns the number of instances by state.
func (a *Agent) Counts() Counts {
	var c Counts
	pending := !a.reconciled()
	a.mu.RLock()
	defer a.mu.RUnlock()
	a.reg.Each(func(rec registry.Record) bool {
		c.Total++
		switch ls, ok := a.live[rec.UserID]; {
		case a.cluster != nil && a.nodeDown(rec.UserID, ls):
			c.Missing++ // its node is not ready
		case !ok && pending && rec.State == StateRunning:
			c.Running++ // as last recorded: not yet asked of the engine
		case !ok && pending && rec.State == StatePaused:
			c.Paused++
		case !ok && pending && rec.State == StateStopped:
			c.Stopped++
		case !ok || !ls.exists():
			c.Missing++
		case ls.running():
			c.Running++
		case ls.paused():
			c.Paused++
		default:
			c.Stopped++
		}
		return true
	})
	return c
}

// Alive reports whether the agent's loops are making progress: none is
// stuck in one iteration for longer than its bound. systemd's watchdog is
// fed only while it holds.
func (a *Agent) Alive() bool { return a.loops.wedged(a.loopBound()) == "" }

func (a *Agent) loopBound() time.Duration {
	return 3*seconds(a.conf().CallTimeoutSeconds) + time.Minute
}

// Errors.

func invalid(format string, args ...any) error {
	return errdefs.Errorf(errdefs.ErrInvalidArgument, format, args...)
}

func forbidden(format string, args ...any) error {
	return errdefs.Errorf(errdefs.ErrForbidden, format, args...)
}

func notFound(userID string) error {
	return errdefs.Errorf(errdefs.ErrNotFound, "no instance for user %q", userID)
}

func validateUserID(id string) error {
	if err := registry.ValidateUserID(id); err != nil {
		return invalid("%v", err)
	}
	return nil
}

// unavailable reports whether err means the runtime or engine is down.
func unavailable(err error) bool { return errors.Is(err, errdefs.ErrUnavailable) }
