package cliargs

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// CreateFlags returns the options of `create` for a validated spec, from
// --pull=never to --stop-timeout, with health (the engine's own
// healthcheck flags) before --stop-timeout. The env file, the image and
// the command are the caller's to add after them.
func CreateFlags(spec runtime.ContainerSpec, health []string) []string {
	a := []string{"--pull=never", "--name=" + spec.Name}
	for _, k := range slices.Sorted(maps.Keys(spec.Labels)) {
		a = append(a, "--label="+k+"="+spec.Labels[k])
	}
	if spec.User != "" {
		a = append(a, "--user="+spec.User)
	}
	if spec.Init {
		a = append(a, "--init")
	}
	if spec.OCIRuntime != "" {
		a = append(a, "--runtime="+spec.OCIRuntime)
	}

	r := spec.Resources
	if r.CPUs > 0 {
		a = append(a, "--cpus="+strconv.FormatFloat(r.CPUs, 'f', -1, 64))
	}
	if r.CPUShares > 0 {
		a = append(a, "--cpu-shares="+strconv.FormatInt(r.CPUShares, 10))
	}
	if r.Memory != "" {
		// Validated, so it parses; the client is given the byte count so
		// that both sides agree on the notation.
		n, _ := runtime.ParseBytes(r.Memory)
		a = append(a, "--memory="+strconv.FormatInt(n, 10))
	}
	switch r.MemorySwap {
	case "":
	case "-1":
		a = append(a, "--memory-swap=-1")
	default:
		n, _ := runtime.ParseBytes(r.MemorySwap)
		a = append(a, "--memory-swap="+strconv.FormatInt(n, 10))
	}
	if r.PidsLimit != 0 {
		a = append(a, "--pids-limit="+strconv.FormatInt(r.PidsLimit, 10))
	}
	for _, u := range r.Ulimits {
		a = append(a, "--ulimit="+u.String())
	}

	s := spec.Security
	if s.ReadOnlyRoot {
		a = append(a, "--read-only")
	}
	for _, t := range s.Tmpfs {
		if t.Options != "" {
			a = append(a, "--tmpfs="+t.Path+":"+t.Options)
		} else {
			a = append(a, "--tmpfs="+t.Path)
		}
	}
	for _, c := range s.CapDrop {
		a = append(a, "--cap-drop="+c)
	}
	for _, c := range s.CapAdd {
		a = append(a, "--cap-add="+c)
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

	switch rp := spec.Restart; {
	case rp.Name == "":
	case rp.Name == "on-failure" && rp.MaxRetries > 0:
		a = append(a, "--restart=on-failure:"+strconv.Itoa(rp.MaxRetries))
	default:
		a = append(a, "--restart="+rp.Name)
	}

	if spec.Network != "" {
		a = append(a, "--network="+spec.Network)
	}
	for _, p := range spec.Ports {
		a = append(a, "--publish="+Publish(p))
	}
	for _, m := range spec.Mounts {
		v := "type=bind,source=" + m.Source + ",target=" + m.Target
		if m.ReadOnly {
			v += ",readonly"
		}
		a = append(a, "--mount="+v)
	}
	a = append(a, health...)
	if spec.StopTimeout > 0 {
		a = append(a, "--stop-timeout="+strconv.Itoa(Seconds(spec.StopTimeout)))
	}
	return a
}

// LogFlags are the options of `create` that bound the container's log:
// driver (the one whose rotation the engine's client knows) and its
// max-size as a byte count, and max-file when maxFile (an engine whose
// driver keeps several files). None for a zero l: the engine's default.
func LogFlags(l runtime.LogConfig, driver string, maxFile bool) []string {
	if l.MaxSize == "" {
		return nil
	}
	n, _ := runtime.ParseBytes(l.MaxSize) // validated
	a := []string{"--log-driver=" + driver, "--log-opt=max-size=" + strconv.FormatInt(n, 10)}
	if maxFile && l.MaxFiles > 0 {
		a = append(a, "--log-opt=max-file="+strconv.Itoa(l.MaxFiles))
	}
	return a
}

// Publish is one --publish value: hostip:hostport:containerport/proto, an
// IPv6 host address in brackets.
func Publish(p runtime.PortBinding) string {
	proto := p.Protocol
	if proto == "" {
		proto = "tcp"
	}
	host := p.HostIP
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		host = "[" + host + "]"
	}
	return fmt.Sprintf("%s:%d:%d/%s", host, p.HostPort, p.ContainerPort, proto)
}

// LabelFilters turns a label selector into the --filter flags of `ps`:
// label=key=value, or label=key for a key alone (value ""). Both clients
// AND them. A key or value that the filter syntax cannot carry is
// runtime.ErrInvalidArgument.
func LabelFilters(labels map[string]string) ([]string, error) {
	var f []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		v := labels[k]
		if k == "" || strings.ContainsAny(k, "=\x00\n\r") || strings.ContainsAny(v, "\x00\n\r") {
			return nil, runtime.Errorf(runtime.ErrInvalidArgument, "invalid label selector %q=%q", k, v)
		}
		if v == "" {
			f = append(f, "--filter=label="+k)
		} else {
			f = append(f, "--filter=label="+k+"="+v)
		}
	}
	return f, nil
}

// Seconds rounds a timeout up to whole seconds, the clients' unit.
func Seconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}
