package baseline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zaki-platform/zaki-agent/agent"
	"github.com/zaki-platform/zaki-agent/registry"
	"github.com/zaki-platform/zaki-agent/socketapi"
)

// Config is where the old engine keeps its state and what it runs.
type Config struct {
	// Dir holds registry.json and instances/<userId>/.
	Dir string
	// Agent is the agent configuration whose [instance] defaults the
	// containers copy: image, limits, hardening, network, port range.
	Agent agent.Config
	// LabelPrefix replaces Agent.Instance.LabelPrefix on containers, so
	// that an agent running beside the baseline never adopts them.
	LabelPrefix string
	// ReadyInterval is the pause between readiness probes (5 ms when 0).
	ReadyInterval time.Duration
}

// Engine is the old engine. Its methods are safe for concurrent use.
type Engine struct {
	cfg    Config
	lo, hi int
	mu     sync.Mutex // the registry file: Node's one thread
}

// New returns an engine over cfg, creating cfg.Dir.
func New(cfg Config) (*Engine, error) {
	lo, hi, err := cfg.Agent.Instance.Ports()
	if err != nil {
		return nil, fmt.Errorf("port range: %w", err)
	}
	if cfg.LabelPrefix == "" {
		cfg.LabelPrefix = cfg.Agent.Instance.LabelPrefix
	}
	if cfg.ReadyInterval <= 0 {
		cfg.ReadyInterval = 5 * time.Millisecond
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "instances"), 0o711); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	return &Engine{cfg: cfg, lo: lo, hi: hi}, nil
}

// Entry is one line of the old registry.json.
type Entry struct {
	ContainerName string `json:"containerName"`
	UserID        string `json:"userId"`
	CreatedAtMs   int64  `json:"createdAtMs"`
	LastUsedAtMs  int64  `json:"lastUsedAtMs"`
	Port          int    `json:"port"`
	Image         string `json:"image"`
	ConfigHash    string `json:"configHash"`
}

type registryFile struct {
	Entries []Entry `json:"entries"`
}

// Instance is what Ensure and List return.
type Instance struct {
	UserID        string
	ContainerName string
	Port          int
	State         string
	Outcome       string
}

// ContainerName is the old engine's (and the agent's) container name.
func ContainerName(userID string) string { return "zaki-user-" + userID }

// Ensure makes userID's container exist, run and answer on its port; see
// the package doc for the steps.
func (e *Engine) Ensure(ctx context.Context, userID string, spec socketapi.InstanceSpec) (Instance, error) {
	if err := registry.ValidateUserID(userID); err != nil {
		return Instance{}, err
	}
	image := spec.Image
	if image == "" {
		image = e.cfg.Agent.Instance.Image
	}
	hash := configHash(image, spec)
	name := ContainerName(userID)

	st, err := e.inspect(ctx, name)
	if err != nil {
		return Instance{}, err
	}
	now := time.Now().UnixMilli()
	if st.exists && st.hash == hash {
		ent, err := e.update(userID, func(ent *Entry) { ent.LastUsedAtMs = now })
		if err != nil {
			return Instance{}, err
		}
		in := Instance{UserID: userID, ContainerName: name, Port: ent.Port, State: "running", Outcome: "reused"}
		if st.running {
			return in, nil
		}
		if _, err := docker(ctx, "start", name); err != nil {
			return Instance{}, fmt.Errorf("start %s: %w", name, err)
		}
		in.Outcome = "started"
		return in, e.waitReady(ctx, ent.Port)
	}
	outcome := "created"
	if st.exists {
		outcome = "recreated"
		if _, err := docker(ctx, "rm", "-f", name); err != nil {
			return Instance{}, fmt.Errorf("remove %s: %w", name, err)
		}
	}
	ent, err := e.update(userID, func(ent *Entry) {
		*ent = Entry{ContainerName: name, UserID: userID, CreatedAtMs: now, LastUsedAtMs: now,
			Port: ent.Port, Image: image, ConfigHash: hash}
	})
	if err != nil {
		return Instance{}, err
	}
	dir, err := e.dataDir(userID, spec.Files)
	if err != nil {
		return Instance{}, err
	}
	env := maps.Clone(spec.Env)
	if env == nil {
		env = map[string]string{}
	}
	if _, ok := env["ZAKI_USER_ID"]; !ok {
		env["ZAKI_USER_ID"] = userID
	}
	labels := Labels(e.cfg.LabelPrefix, userID, hash, ent.Port, now)
	if err := Run(ctx, e.cfg.Agent, name, image, ent.Port, dir, labels, env); err != nil {
		return Instance{}, err
	}
	if err := e.waitReady(ctx, ent.Port); err != nil {
		return Instance{}, err
	}
	return Instance{UserID: userID, ContainerName: name, Port: ent.Port, State: "running", Outcome: outcome}, nil
}

// List returns every registered instance with its state from one
// `docker ps`.
func (e *Engine) List(ctx context.Context) ([]Instance, error) {
	e.mu.Lock()
	f, err := e.read()
	e.mu.Unlock()
	if err != nil {
		return nil, err
	}
	out, err := docker(ctx, "ps", "-a", "--no-trunc", "--filter", "label="+e.cfg.LabelPrefix+".instance=1",
		"--format", "{{.Names}}\t{{.State}}")
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	states := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		if n, s, ok := strings.Cut(line, "\t"); ok {
			states[n] = s
		}
	}
	ins := make([]Instance, 0, len(f.Entries))
	for _, ent := range f.Entries {
		st := states[ent.ContainerName]
		switch st {
		case "":
			st = "missing"
		case "running", "restarting":
			st = "running"
		default:
			st = "stopped"
		}
		ins = append(ins, Instance{UserID: ent.UserID, ContainerName: ent.ContainerName, Port: ent.Port, State: st})
	}
	return ins, nil
}

// WriteRegistry replaces registry.json with entries (to seed a large
// registry for the list benchmark).
func (e *Engine) WriteRegistry(entries []Entry) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.write(&registryFile{Entries: entries})
}

type inspected struct {
	exists, running bool
	hash            string
}

// inspect is the per-request `docker inspect`.
func (e *Engine) inspect(ctx context.Context, name string) (inspected, error) {
	out, err := docker(ctx, "inspect", "--type=container", "--format",
		`{{.State.Running}} {{index .Config.Labels "`+e.cfg.LabelPrefix+`.configHash"}}`, name)
	if err != nil {
		if errors.Is(err, errNoSuchContainer) {
			return inspected{}, nil
		}
		return inspected{}, fmt.Errorf("inspect %s: %w", name, err)
	}
	running, hash, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	return inspected{exists: true, running: running == "true", hash: hash}, nil
}

// update reads registry.json, lets fn change userID's entry (a new one,
// with the lowest free port, when there is none) and rewrites the file.
func (e *Engine) update(userID string, fn func(*Entry)) (Entry, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f, err := e.read()
	if err != nil {
		return Entry{}, err
	}
	i := slices.IndexFunc(f.Entries, func(ent Entry) bool { return ent.UserID == userID })
	if i < 0 {
		used := make(map[int]bool, len(f.Entries))
		for _, ent := range f.Entries {
			used[ent.Port] = true
		}
		port := 0
		for p := e.lo; p <= e.hi; p++ {
			if !used[p] {
				port = p
				break
			}
		}
		if port == 0 {
			return Entry{}, fmt.Errorf("no free port in %d-%d", e.lo, e.hi)
		}
		f.Entries = append(f.Entries, Entry{UserID: userID, ContainerName: ContainerName(userID), Port: port})
		i = len(f.Entries) - 1
	}
	fn(&f.Entries[i])
	if err := e.write(f); err != nil {
		return Entry{}, err
	}
	return f.Entries[i], nil
}

func (e *Engine) path() string { return filepath.Join(e.cfg.Dir, "registry.json") }

func (e *Engine) read() (*registryFile, error) {
	var f registryFile
	b, err := os.ReadFile(e.path())
	if errors.Is(err, os.ErrNotExist) {
		return &f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read registry: %w", err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse registry: %w", err)
	}
	return &f, nil
}

// write is the old engine's plain write: truncate and write in place.
func (e *Engine) write(f *registryFile) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(e.path(), b, 0o600); err != nil {
		return fmt.Errorf("write registry: %w", err)
	}
	return nil
}

// dataDir makes instances/<userId> for the container user and writes the
// spec's files into it (plain writes).
func (e *Engine) dataDir(userID string, files map[string]string) (string, error) {
	uid, gid := User(e.cfg.Agent.Instance)
	dir := filepath.Join(e.cfg.Dir, "instances", userID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("data dir: %w", err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return "", fmt.Errorf("data dir: %w", err)
	}
	for name, text := range files {
		p := filepath.Join(dir, filepath.Base(name))
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			return "", fmt.Errorf("write %s: %w", name, err)
		}
		if err := os.Chown(p, uid, gid); err != nil {
			return "", fmt.Errorf("write %s: %w", name, err)
		}
	}
	return dir, nil
}

func (e *Engine) waitReady(ctx context.Context, port int) error {
	return WaitReady(ctx, e.cfg.Agent, port, e.cfg.ReadyInterval)
}

// WaitReady polls agent.Probe on the instance's host port every interval
// until it answers, within the agent's readiness timeout.
func WaitReady(ctx context.Context, cfg agent.Config, port int, interval time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(cfg.Instance.ReadinessTimeoutSeconds*float64(time.Second)))
	defer cancel()
	addr := net.JoinHostPort(cfg.Instance.BindAddress, strconv.Itoa(port))
	for {
		err := agent.Probe(ctx, addr)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("port %d not ready: %w", port, err)
		case <-time.After(interval):
		}
	}
}

// configHash is the old engine's config hash: SHA-256 of the spec's JSON.
func configHash(image string, spec socketapi.InstanceSpec) string {
	spec.Image = image
	b, _ := json.Marshal(spec) // maps marshal in key order
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Labels are the five labels the agent puts on a container, under prefix.
func Labels(prefix, userID, hash string, port int, createdAtMs int64) map[string]string {
	return map[string]string{
		prefix + ".instance":    "1",
		prefix + ".userId":      userID,
		prefix + ".createdAtMs": strconv.FormatInt(createdAtMs, 10),
		prefix + ".configHash":  hash,
		prefix + ".port":        strconv.Itoa(port),
	}
}

// User is the uid:gid the baseline's (and the floor's) containers run
// as: the config's fixed instance.user, else 1000:1000, the platform's
// own. (The agent gives each tenant a uid of its own, reserved once per
// user: nothing per call.)
func User(in agent.InstanceConfig) (uid, gid int) {
	if in.User == "" {
		return 1000, 1000
	}
	uid, gid, _ = in.UIDGID()
	return uid, gid
}

// RunArgs is the argv of `docker run -d` for one instance, with the flags
// the agent's docker runtime gives `docker create` for the same config
// (the defaults of packaging/config.toml), minus the env file and the image.
func RunArgs(cfg agent.Config, name string, port int, dataDir string, labels map[string]string) []string {
	in := cfg.Instance
	a := []string{"run", "-d", "--pull=never", "--name=" + name}
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		a = append(a, "--label="+k+"="+labels[k])
	}
	uid, gid := User(in)
	a = append(a, fmt.Sprintf("--user=%d:%d", uid, gid))
	if in.Init {
		a = append(a, "--init")
	}
	r := in.Resources
	mem := strings.ToLower(r.Memory)
	a = append(a,
		"--cpus="+strconv.FormatFloat(r.CPUs, 'f', -1, 64),
		"--cpu-shares="+strconv.FormatInt(r.CPUShares, 10),
		"--memory="+mem,
		"--memory-swap="+mem,
		"--pids-limit="+strconv.FormatInt(r.Pids, 10),
	)
	for _, u := range r.Ulimits {
		a = append(a, "--ulimit="+u)
	}
	s := in.Security
	if s.ReadOnlyRoot {
		a = append(a, "--read-only")
	}
	for _, t := range s.Tmpfs {
		a = append(a, "--tmpfs="+t)
	}
	for _, c := range s.CapDrop {
		a = append(a, "--cap-drop="+c)
	}
	if s.NoNewPrivileges {
		a = append(a, "--security-opt=no-new-privileges")
	}
	if s.SeccompProfile != "" {
		a = append(a, "--security-opt=seccomp="+s.SeccompProfile)
	}
	if s.ApparmorProfile != "" {
		a = append(a, "--security-opt=apparmor="+s.ApparmorProfile)
	}
	if in.Restart != "" {
		a = append(a, "--restart="+in.Restart)
	}
	a = append(a,
		"--network="+in.Network,
		fmt.Sprintf("--publish=%s:%d:%d/tcp", in.BindAddress, port, in.ContainerPort),
		"--mount=type=bind,source="+dataDir+",target="+in.DataMountPath,
	)
	if len(in.HealthCmd) > 0 {
		// The agent's runtime keeps the image's own exec-form HEALTHCHECK
		// (the stand-in's is the configured command) and sets the timings.
		iv := time.Duration(in.HealthIntervalSeconds * float64(time.Second))
		a = append(a,
			"--health-interval="+iv.String(),
			"--health-timeout="+min(iv, 5*time.Second).String(),
			"--health-start-period="+time.Duration(in.ReadinessTimeoutSeconds*float64(time.Second)).String(),
			"--health-retries=3",
		)
	} else {
		a = append(a, "--no-healthcheck")
	}
	if in.StopTimeoutSeconds > 0 {
		a = append(a, "--stop-timeout="+strconv.Itoa(int(in.StopTimeoutSeconds)))
	}
	return a
}

// Run is `docker run -d` of RunArgs, its env passed by a 0600 env file
// that lives only as long as the call.
func Run(ctx context.Context, cfg agent.Config, name, image string, port int, dataDir string, labels, env map[string]string) error {
	args := RunArgs(cfg, name, port, dataDir, labels)
	if len(env) > 0 {
		tmp, err := os.MkdirTemp("", "zaki-baseline-env-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		file := filepath.Join(tmp, "env")
		var b strings.Builder
		for _, k := range slices.Sorted(maps.Keys(env)) {
			b.WriteString(k + "=" + env[k] + "\n")
		}
		if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
			return err
		}
		args = append(args, "--env-file="+file)
	}
	args = append(args, image)
	if _, err := docker(ctx, args...); err != nil {
		return fmt.Errorf("docker run %s: %w", name, err)
	}
	return nil
}

var errNoSuchContainer = errors.New("no such container")

// docker runs the docker CLI and returns its stdout.
func docker(ctx context.Context, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "No such container") || strings.Contains(msg, "No such object") {
			return nil, fmt.Errorf("%w: %s", errNoSuchContainer, msg)
		}
		return nil, fmt.Errorf("docker %s: %v: %s", args[0], err, msg)
	}
	return stdout.Bytes(), nil
}
