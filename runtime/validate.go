package runtime

import (
	"fmt"
	"math"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Validation is shared by every runtime so that bad input is refused with
// ErrInvalidArgument before any engine sees it, and so that nothing a caller
// sends can be read by an engine CLI as an option or a second argument.

var (
	// nameRE is the engine's own rule for container and network names.
	nameRE = bounded(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`, 128)
	// ociRuntimeRE is the name of an engine's OCI runtime ("runsc").
	ociRuntimeRE = bounded(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`, 64)
	// refRE accepts container IDs and names.
	refRE = bounded(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`, 128)
	// imageRE is a permissive image reference: [registry[:port]/]path[:tag][@digest].
	imageRE   = bounded(`^[a-zA-Z0-9][a-zA-Z0-9._:/@+-]*$`, 255)
	userRE    = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,31}(:[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,31})?$`)
	capRE     = bounded(`^[A-Z_]+$`, 32)
	envKeyRE  = bounded(`^[A-Za-z_][A-Za-z0-9_.-]*$`, 256)
	labelKeyR = bounded(`^[a-zA-Z0-9][a-zA-Z0-9_./-]*$`, 128)
	bytesRE   = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)([kmgtpKMGTP]?)(?:[bB]|i[bB])?$`)
)

// boundedRE is a pattern of ASCII characters and a bound on its length,
// kept out of the regexp: a counted repetition such as {0,254} compiles
// into a program of hundreds of instructions, which every process that
// imports this package paid at start-up (the agent, and the plugin at
// each launch: about 10,000 allocations and several ms of CPU in all).
type boundedRE struct {
	re  *regexp.Regexp
	max int // bytes, which are characters: the classes are ASCII
}

func bounded(expr string, max int) boundedRE {
	return boundedRE{re: regexp.MustCompile(expr), max: max}
}

// MatchString reports whether s is at most max bytes long and matches.
func (b boundedRE) MatchString(s string) bool {
	return len(s) <= b.max && b.re.MatchString(s)
}

var ulimitNames = map[string]bool{
	"core": true, "cpu": true, "data": true, "fsize": true, "locks": true,
	"memlock": true, "msgqueue": true, "nice": true, "nofile": true, "nproc": true,
	"rss": true, "rtprio": true, "rttime": true, "sigpending": true, "stack": true,
}

var restartNames = map[string]bool{"": true, "no": true, "on-failure": true, "always": true, "unless-stopped": true}

func invalid(format string, args ...any) error {
	return Errorf(ErrInvalidArgument, format, args...)
}

// ValidateName checks a container or network name.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return invalid("invalid name %q: want [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 128 characters", name)
	}
	return nil
}

// ValidateOCIRuntime checks the name of an engine's OCI runtime
// (ContainerSpec.OCIRuntime): letters, digits, '.', '_' and '-', not a
// path; empty is the engine's default.
func ValidateOCIRuntime(name string) error {
	if name != "" && !ociRuntimeRE.MatchString(name) {
		return invalid("invalid OCI runtime %q: want a name the engine knows, [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 64 characters (not a path)", name)
	}
	return nil
}

// ValidateRef checks a container reference (ID or name).
func ValidateRef(ref string) error {
	if !refRE.MatchString(ref) {
		return invalid("invalid container reference %q", ref)
	}
	return nil
}

// ValidateRefs checks each of refs with ValidateRef.
func ValidateRefs(refs []string) error {
	for _, r := range refs {
		if err := ValidateRef(r); err != nil {
			return err
		}
	}
	return nil
}

// ValidateImage checks an image reference.
func ValidateImage(ref string) error {
	if ref == "" {
		return invalid("empty image reference")
	}
	if !imageRE.MatchString(ref) || strings.Contains(ref, "//") || strings.HasSuffix(ref, ":") || strings.HasSuffix(ref, "/") {
		return invalid("invalid image reference %q", ref)
	}
	return nil
}

// ValidateEnvKey checks an environment variable name.
func ValidateEnvKey(key string) error {
	if !envKeyRE.MatchString(key) {
		return invalid("invalid environment variable name %q", key)
	}
	return nil
}

// MaxEnvLine bounds one variable's line in an env file, KEY=value without
// the line break: the docker and podman clients read an --env-file with a
// bufio.Scanner of 64 KiB, which fails on a longer line ("token too
// long").
const MaxEnvLine = 64<<10 - 1

// ValidateEnvValue checks an environment variable value: an env file holds
// one variable a line, so a value cannot span lines, and the line must fit
// the clients' reader (MaxEnvLine). The error names the key, never the
// value.
func ValidateEnvValue(key, value string) error {
	if strings.ContainsAny(value, "\x00\n\r") {
		return invalid("environment variable %q: value holds a NUL or line break", key)
	}
	if n := len(key) + 1 + len(value); n > MaxEnvLine {
		return invalid("environment variable %q: %d bytes with its name, at most %d", key, n, MaxEnvLine)
	}
	return nil
}

// ParseBytes parses a size in the docker CLI's notation: a number with an
// optional unit b, k, m, g, t or p (powers of 1024, case-insensitive, an
// optional trailing "b" or "ib"), no space: "2g" is 2147483648. The API
// document's pattern of Resources.memory is bytesRE: keep them together.
func ParseBytes(s string) (int64, error) {
	m := bytesRE.FindStringSubmatch(s)
	if m == nil {
		return 0, invalid("invalid size %q: want a number with an optional unit k, m, g, t or p", s)
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, invalid("invalid size %q: %v", s, err)
	}
	mult := float64(1)
	switch strings.ToLower(m[2]) {
	case "k":
		mult = 1 << 10
	case "m":
		mult = 1 << 20
	case "g":
		mult = 1 << 30
	case "t":
		mult = 1 << 40
	case "p":
		mult = 1 << 50
	}
	v := n * mult
	if v >= math.MaxInt64 {
		return 0, invalid("invalid size %q: too large", s)
	}
	return int64(v), nil
}

// ParseUlimit parses "name=soft[:hard]".
func ParseUlimit(s string) (Ulimit, error) {
	name, limits, ok := strings.Cut(s, "=")
	if !ok {
		return Ulimit{}, invalid("invalid ulimit %q: want name=soft[:hard]", s)
	}
	softS, hardS, hasHard := strings.Cut(limits, ":")
	soft, err := strconv.ParseInt(softS, 10, 64)
	if err != nil {
		return Ulimit{}, invalid("invalid ulimit %q: soft limit is not a number", s)
	}
	hard := soft
	if hasHard {
		if hard, err = strconv.ParseInt(hardS, 10, 64); err != nil {
			return Ulimit{}, invalid("invalid ulimit %q: hard limit is not a number", s)
		}
	}
	u := Ulimit{Name: name, Soft: soft, Hard: hard}
	return u, u.validate()
}

// String formats u as name=soft:hard.
func (u Ulimit) String() string { return fmt.Sprintf("%s=%d:%d", u.Name, u.Soft, u.Hard) }

func (u Ulimit) validate() error {
	if !ulimitNames[u.Name] {
		return invalid("invalid ulimit name %q", u.Name)
	}
	if u.Soft < -1 || u.Hard < -1 || (u.Hard >= 0 && u.Soft > u.Hard) {
		return invalid("invalid ulimit %s: want 0 <= soft <= hard", u)
	}
	return nil
}

// Validate checks a network spec.
func (s NetworkSpec) Validate() error {
	if err := ValidateName(s.Name); err != nil {
		return err
	}
	if s.Driver != "" && !nameRE.MatchString(s.Driver) {
		return invalid("invalid network driver %q", s.Driver)
	}
	return validateLabels(s.Labels)
}

func validateLabels(labels map[string]string) error {
	for k, v := range labels {
		if !labelKeyR.MatchString(k) {
			return invalid("invalid label key %q", k)
		}
		if strings.ContainsAny(v, "\x00\n\r") {
			return invalid("label %q: value holds a NUL or line break", k)
		}
	}
	return nil
}

func validatePath(what, p string) error {
	if p == "" || !path.IsAbs(p) || path.Clean(p) != p {
		return invalid("%s %q: want a clean absolute path", what, p)
	}
	// Commas, colons and quotes would split the engine CLI's mount syntax.
	if strings.ContainsAny(p, ",:\"'\x00\n\r") {
		return invalid("%s %q: holds a character that is not allowed (, : quote NUL line break)", what, p)
	}
	return nil
}

// Validate checks a container spec for a local engine: ValidateOn with
// an Info that lists nothing unenforced and no capability, so every port
// needs its HostIP and Placement.Node is refused. Every runtime calls it,
// or ValidateOn with its own Info, before it touches its engine.
func (s *ContainerSpec) Validate() error { return s.ValidateOn(Info{}) }

// ValidateOn checks a container spec for the runtime info describes: a
// port's HostIP may be "" only when info lists FieldHostIP as unenforced,
// Placement.Node needs CapPlacement. It does not refuse the fields info
// lists as unenforced (a runtime cannot know what its nodes enforce): the
// caller that knows does, with ValidateFor.
func (s *ContainerSpec) ValidateOn(info Info) error {
	if err := s.validate(slices.Contains(info.Unenforced, FieldHostIP)); err != nil {
		return err
	}
	if n := s.Placement.Node; n != "" {
		if !info.Has(CapPlacement) {
			return invalid("%s is set (%q) but %s does not place containers on nodes", FieldPlacement, n, runtimeName(info))
		}
		if err := ValidateName(n); err != nil {
			return invalid("%s: %v", FieldPlacement, err)
		}
	}
	return nil
}

// ValidateFor checks spec for the runtime info describes (ValidateOn),
// then refuses each field spec sets that the runtime cannot enforce and
// that enforcedElsewhere (the keys the operator says something else
// enforces, such as node provisioning) does not name. The error is
// ErrInvalidArgument and names every such field.
func ValidateFor(spec ContainerSpec, info Info, enforcedElsewhere []string) error {
	if err := spec.ValidateOn(info); err != nil {
		return err
	}
	fields := Unenforced(spec, info, enforcedElsewhere)
	if len(fields) == 0 {
		return nil
	}
	msgs := make([]string, len(fields))
	for i, f := range fields {
		msgs[i] = fmt.Sprintf("%s is set but %s cannot enforce it", f, runtimeName(info))
	}
	return invalid("%s; unset it, or list it in instance.enforcedByNodes if node provisioning enforces it", strings.Join(msgs, "; "))
}

// Unenforced lists, in the order of info.Unenforced, the fields spec sets
// that the runtime cannot enforce and that enforcedElsewhere does not
// name. A key it does not know is skipped: this version's spec has no
// such field to set. A port's HostIP counts as set when it is not "".
func Unenforced(spec ContainerSpec, info Info, enforcedElsewhere []string) []string {
	var out []string
	for _, f := range info.Unenforced {
		if slices.Contains(enforcedElsewhere, f) || slices.Contains(out, f) {
			continue
		}
		if isSet, ok := specFields[f]; ok && isSet(&spec) {
			out = append(out, f)
		}
	}
	return out
}

// specFields tells, for each key a runtime may list in Info.Unenforced,
// whether a spec sets that field.
var specFields = map[string]func(*ContainerSpec) bool{
	FieldNoNewPrivileges: func(s *ContainerSpec) bool { return s.Security.NoNewPrivileges },
	FieldMemorySwap:      func(s *ContainerSpec) bool { return s.Resources.MemorySwap != "" },
	FieldCPUShares:       func(s *ContainerSpec) bool { return s.Resources.CPUShares != 0 },
	FieldHostIP: func(s *ContainerSpec) bool {
		return slices.ContainsFunc(s.Ports, func(p PortBinding) bool { return p.HostIP != "" })
	},
	FieldPlacement: func(s *ContainerSpec) bool { return s.Placement.Node != "" },
}

// runtimeName names the runtime of info in an error.
func runtimeName(info Info) string {
	if info.Runtime == "" {
		return "this runtime"
	}
	return "the runtime " + info.Runtime
}

// validate checks everything but Placement; anyHostIP accepts a port
// without a HostIP.
func (s *ContainerSpec) validate(anyHostIP bool) error {
	if err := ValidateName(s.Name); err != nil {
		return err
	}
	if err := ValidateImage(s.Image); err != nil {
		return err
	}
	for _, a := range s.Cmd {
		if strings.ContainsRune(a, 0) {
			return invalid("command argument holds a NUL")
		}
	}
	for k, v := range s.Env {
		if err := ValidateEnvKey(k); err != nil {
			return err
		}
		if err := ValidateEnvValue(k, v); err != nil {
			return err
		}
	}
	if err := validateLabels(s.Labels); err != nil {
		return err
	}
	if s.User != "" && !userRE.MatchString(s.User) {
		return invalid("invalid user %q: want name or uid, optionally :group", s.User)
	}
	if err := s.Resources.validate(); err != nil {
		return err
	}
	if err := s.Security.validate(); err != nil {
		return err
	}
	if !restartNames[s.Restart.Name] {
		return invalid("invalid restart policy %q", s.Restart.Name)
	}
	if s.Restart.MaxRetries < 0 || (s.Restart.MaxRetries > 0 && s.Restart.Name != "on-failure") {
		return invalid("invalid restart policy: max retries %d with %q", s.Restart.MaxRetries, s.Restart.Name)
	}
	if s.Network != "" {
		if err := ValidateName(s.Network); err != nil {
			return err
		}
	}
	for _, p := range s.Ports {
		if p.HostIP == "" && anyHostIP {
			// every address of the node
		} else if p.HostIP == "" || strings.ContainsAny(p.HostIP, " ,\x00\n") || !ipLike(p.HostIP) {
			return invalid("port binding: invalid host address %q", p.HostIP)
		}
		if p.HostPort < 1 || p.HostPort > 65535 || p.ContainerPort < 1 || p.ContainerPort > 65535 {
			return invalid("port binding %d:%d out of range 1-65535", p.HostPort, p.ContainerPort)
		}
		if p.Protocol != "" && p.Protocol != "tcp" && p.Protocol != "udp" {
			return invalid("port binding: invalid protocol %q", p.Protocol)
		}
	}
	for _, m := range s.Mounts {
		if err := validatePath("mount source", m.Source); err != nil {
			return err
		}
		if err := validatePath("mount target", m.Target); err != nil {
			return err
		}
	}
	if h := s.Healthcheck; h != nil {
		if len(h.Test) == 0 {
			return invalid("healthcheck without a command")
		}
		for _, a := range h.Test {
			if strings.ContainsRune(a, 0) {
				return invalid("healthcheck argument holds a NUL")
			}
		}
		if h.Interval < 0 || h.Timeout < 0 || h.StartPeriod < 0 || h.Retries < 0 {
			return invalid("healthcheck: negative durations or retries")
		}
	}
	if s.StopTimeout < 0 {
		return invalid("negative stop timeout")
	}
	if err := ValidateOCIRuntime(s.OCIRuntime); err != nil {
		return err
	}
	return s.Log.Validate()
}

// Validate checks a log bound: a positive size, at least one file, no
// file count without a size.
func (l LogConfig) Validate() error {
	if l.MaxSize != "" {
		n, err := ParseBytes(l.MaxSize)
		if err != nil || n <= 0 {
			return invalid("log max size %q: want a positive size such as 10m", l.MaxSize)
		}
	}
	if l.MaxFiles < 0 || l.MaxFiles > 100 {
		return invalid("log max files %d: want 1 to 100", l.MaxFiles)
	}
	if l.MaxFiles > 0 && l.MaxSize == "" {
		return invalid("log max files without a max size")
	}
	return nil
}

func ipLike(s string) bool {
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F' || r == '.' || r == ':') {
			return false
		}
	}
	return true
}

func (r *Resources) validate() error {
	if r.CPUs < 0 || r.CPUs > 1024 || math.IsNaN(r.CPUs) {
		return invalid("invalid cpus %v", r.CPUs)
	}
	if r.CPUShares < 0 || r.CPUShares == 1 || r.CPUShares > 262144 {
		return invalid("invalid cpu shares %d: want 2-262144", r.CPUShares)
	}
	var mem int64
	if r.Memory != "" {
		n, err := ParseBytes(r.Memory)
		if err != nil {
			return invalid("memory: %v", err)
		}
		if n < 6<<20 {
			return invalid("memory %q: the minimum is 6m", r.Memory)
		}
		mem = n
	}
	if r.MemorySwap != "" && r.MemorySwap != "-1" {
		n, err := ParseBytes(r.MemorySwap)
		if err != nil {
			return invalid("memory swap: %v", err)
		}
		if mem == 0 {
			return invalid("memory swap set without a memory limit")
		}
		if n < mem {
			return invalid("memory swap %q is smaller than memory %q", r.MemorySwap, r.Memory)
		}
	}
	if r.PidsLimit < -1 {
		return invalid("invalid pids limit %d", r.PidsLimit)
	}
	for _, u := range r.Ulimits {
		if err := u.validate(); err != nil {
			return err
		}
	}
	return nil
}

func (s *Security) validate() error {
	for _, t := range s.Tmpfs {
		if err := validatePath("tmpfs", t.Path); err != nil {
			return err
		}
		if strings.ContainsAny(t.Options, " :\"'\x00\n\r") {
			return invalid("tmpfs %s: invalid options %q", t.Path, t.Options)
		}
	}
	for _, c := range append(append([]string(nil), s.CapDrop...), s.CapAdd...) {
		if !capRE.MatchString(c) {
			return invalid("invalid capability %q", c)
		}
	}
	if s.SeccompProfile == "unconfined" {
		return invalid("seccomp profile \"unconfined\" is refused")
	}
	if s.ApparmorProfile == "unconfined" {
		return invalid("apparmor profile \"unconfined\" is refused")
	}
	for what, p := range map[string]string{"seccomp profile": s.SeccompProfile, "apparmor profile": s.ApparmorProfile} {
		if strings.ContainsAny(p, ",\"'\x00\n\r") || strings.HasPrefix(p, "-") {
			return invalid("invalid %s %q", what, p)
		}
	}
	return nil
}

// Validate checks a directory spec of Cluster.PrepareDir: a node name, a
// clean absolute path, ids from 0 to 2^31-2.
func (d DirSpec) Validate() error {
	if err := ValidateName(d.Node); err != nil {
		return invalid("prepare dir: node: %v", err)
	}
	if err := validatePath("prepare dir: path", d.Path); err != nil {
		return err
	}
	if d.Path == "/" {
		return invalid("prepare dir: path \"/\" is refused")
	}
	if d.UID < 0 || d.GID < 0 || d.UID >= math.MaxInt32 || d.GID >= math.MaxInt32 {
		return invalid("prepare dir: uid %d, gid %d: want 0 to %d", d.UID, d.GID, math.MaxInt32-1)
	}
	return nil
}

// Validate checks an exec's options: a command, a timeout within
// MaxExecTimeout, an output cap within MaxExecOutput. Its errors never
// quote the command's arguments (they may hold secrets).
func (o ExecOptions) Validate() error {
	if len(o.Cmd) == 0 || o.Cmd[0] == "" {
		return invalid("exec: empty command")
	}
	for i, a := range o.Cmd {
		if strings.ContainsRune(a, 0) {
			return invalid("exec: argument %d holds a NUL byte", i)
		}
	}
	if o.Timeout <= 0 || o.Timeout > MaxExecTimeout {
		return invalid("exec: timeout %v out of range (0, %v]", o.Timeout, MaxExecTimeout)
	}
	if o.MaxOutput < 0 || o.MaxOutput > MaxExecOutput {
		return invalid("exec: output cap %d out of range [0, %d]", o.MaxOutput, MaxExecOutput)
	}
	return nil
}
