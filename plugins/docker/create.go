package docker

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zaki-platform/zaki-agent/runtime"
)

var containerIDRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Create creates (does not start) a container with `docker create`, and
// returns its ID. The image must be present: the client is told never to
// pull (--pull never), so a missing image is ErrNotFound rather than a
// hidden pull from a registry.
func (d *Docker) Create(ctx context.Context, spec runtime.ContainerSpec) (string, error) {
	if err := spec.Validate(); err != nil {
		return "", err
	}
	health, err := d.healthArgs(ctx, spec)
	if err != nil {
		return "", fmt.Errorf("create %q: %w", spec.Name, err)
	}
	args := createArgs(spec, health)

	// The env file lives exactly as long as the docker create call.
	if len(spec.Env) > 0 {
		dir, err := os.MkdirTemp(tempDir(d.tempDir), "zaki-env-")
		if err != nil {
			return "", fmt.Errorf("create %q: env file: %w", spec.Name, err)
		}
		defer os.RemoveAll(dir)
		file := filepath.Join(dir, "env")
		if err := writeEnvFile(file, spec.Env); err != nil {
			return "", fmt.Errorf("create %q: env file: %w", spec.Name, err)
		}
		args = append(args, "--env-file="+file)
	}

	// The image ends the options; what follows is the container's command,
	// which the client passes on without parsing.
	args = append(args, spec.Image)
	args = append(args, spec.Cmd...)

	res, err := d.run(ctx, args...)
	if err != nil {
		return "", fmt.Errorf("create %q: %w", spec.Name, err)
	}
	lines := strings.Fields(string(res.Stdout))
	if len(lines) == 0 || !containerIDRE.MatchString(lines[len(lines)-1]) {
		return "", fmt.Errorf("create %q: unexpected output %q", spec.Name, res.Stdout)
	}
	return lines[len(lines)-1], nil
}

// createArgs is the argv of `docker create` up to (not including) the env
// file and the image. Every caller value is in --flag=value form.
func createArgs(spec runtime.ContainerSpec, health []string) []string {
	a := []string{"create", "--pull=never", "--name=" + spec.Name}
	for _, k := range slices.Sorted(maps.Keys(spec.Labels)) {
		a = append(a, "--label="+k+"="+spec.Labels[k])
	}
	if spec.User != "" {
		a = append(a, "--user="+spec.User)
	}
	if spec.Init {
		a = append(a, "--init")
	}

	r := spec.Resources
	if r.CPUs > 0 {
		a = append(a, "--cpus="+strconv.FormatFloat(r.CPUs, 'f', -1, 64))
	}
	if r.CPUShares > 0 {
		a = append(a, "--cpu-shares="+strconv.FormatInt(r.CPUShares, 10))
	}
	if r.Memory != "" {
		// Validated, so it parses; docker is given the byte count so that
		// both sides agree on the notation.
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
		a = append(a, "--publish="+publishArg(p))
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
		a = append(a, "--stop-timeout="+strconv.Itoa(seconds(spec.StopTimeout)))
	}
	return a
}

// publishArg is hostip:hostport:containerport/proto, an IPv6 host address
// in brackets.
func publishArg(p runtime.PortBinding) string {
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

// writeEnvFile writes env as an env file of mode 0600, one KEY=value a line
// in key order. Validate has refused keys the client would misread and
// values with line breaks; the client takes the rest of a line literally.
func writeEnvFile(path string, env map[string]string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(env)) {
		b.WriteString(k + "=" + env[k] + "\n")
	}
	_, err = f.WriteString(b.String())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// SweepEnvFiles removes the env-file dirs of creates that never finished
// (a plugin killed in the middle of one) and are older than age. Plugins
// sharing a temp dir each create theirs afresh, so a dir older than any
// create can take is an orphan. It returns how many it removed.
func (d *Docker) SweepEnvFiles(age time.Duration) int {
	dir := tempDir(d.tempDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "zaki-env-") {
			continue
		}
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < age {
			continue
		}
		if os.RemoveAll(filepath.Join(dir, e.Name())) == nil {
			n++
		}
	}
	return n
}
