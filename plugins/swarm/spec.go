package swarm

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zaki-platform/zaki-agent/plugins/internal/engineapi"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// The labels the plugin keeps on its services, beside the caller's. The
// prefix is reserved: a spec that uses it is refused, and it is left out of
// the labels read back.
const (
	labelPrefix = "zaki.swarm."
	// LabelName holds the container name asked for (the service may be
	// named otherwise, see serviceName); every service of the plugin has
	// it, and Inspect and List see no other service.
	LabelName = labelPrefix + "name"
	// labelStarted and labelStopped hold when Start and Stop last scaled
	// the service (RFC 3339): scaling to 0 removes the tasks, and with
	// them every trace of the run.
	labelStarted = labelPrefix + "startedAt"
	labelStopped = labelPrefix + "stoppedAt"
	// labelImageID is the manager's ID of the image at Create.
	labelImageID = labelPrefix + "imageId"
	// labelPrepare marks the one-shot jobs of PrepareDir.
	labelPrepare = labelPrefix + "prepare"
)

// The node labels placement constrains to (docs/swarm-nodes.md).
const (
	NodeLabel     = "zaki.node"      // "true" on every node instances may run on
	NodeNameLabel = "zaki.node.name" // the node's name: Placement.Node, Container.Node
)

const nodeNameConstraint = "node.labels." + NodeNameLabel + "=="

// Defaults of a service the spec does not set.
const (
	restartDelay  = time.Second // the engine's default is 5 s
	updateMonitor = time.Second // how long a restarted task is watched (the engine's 5 s)
)

// toService translates a container spec (validated) into the service that
// runs it, at 0 replicas. It refuses what a service cannot express on API
// 1.41 beyond the fields Info lists as unenforced (which it drops: the
// agent refuses them unless node provisioning enforces them): a seccomp or
// AppArmor profile, an OCI runtime, tmpfs options other than size and mode.
func toService(spec runtime.ContainerSpec) (engineapi.ServiceSpec, error) {
	for k := range spec.Labels {
		if strings.HasPrefix(k, labelPrefix) {
			return engineapi.ServiceSpec{}, runtime.Errorf(runtime.ErrInvalidArgument, "label %q: the prefix %s is the swarm runtime's own", k, labelPrefix)
		}
	}
	if spec.Security.SeccompProfile != "" || spec.Security.ApparmorProfile != "" {
		return engineapi.ServiceSpec{}, runtime.Errorf(runtime.ErrInvalidArgument, "the swarm runtime cannot set a seccomp or AppArmor profile (API 1.41): leave them empty, the nodes' engines apply their defaults")
	}
	if spec.OCIRuntime != "" {
		return engineapi.ServiceSpec{}, runtime.Errorf(runtime.ErrInvalidArgument, "the swarm runtime cannot choose an OCI runtime (%q): a service runs under its node's default", spec.OCIRuntime)
	}
	cs := &engineapi.ContainerSpec{
		Image:          spec.Image,
		Args:           spec.Cmd,
		User:           spec.User,
		Init:           &spec.Init,
		ReadOnly:       spec.Security.ReadOnlyRoot,
		CapabilityDrop: spec.Security.CapDrop,
		CapabilityAdd:  spec.Security.CapAdd,
		Labels:         containerLabels(spec),
	}
	for _, k := range slices.Sorted(maps.Keys(spec.Env)) {
		cs.Env = append(cs.Env, k+"="+spec.Env[k])
	}
	if spec.StopTimeout > 0 {
		d := spec.StopTimeout
		cs.StopGracePeriod = &d
	}
	for _, u := range spec.Resources.Ulimits {
		cs.Ulimits = append(cs.Ulimits, engineapi.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	for _, m := range spec.Mounts {
		cs.Mounts = append(cs.Mounts, engineapi.Mount{Type: "bind", Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	for _, t := range spec.Security.Tmpfs {
		opts, err := tmpfsOptions(t)
		if err != nil {
			return engineapi.ServiceSpec{}, err
		}
		cs.Mounts = append(cs.Mounts, engineapi.Mount{Type: "tmpfs", Target: t.Path, TmpfsOptions: opts})
	}
	if h := spec.Healthcheck; h != nil {
		cs.Healthcheck = &engineapi.HealthConfig{
			Test:     append([]string{"CMD"}, h.Test...),
			Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries,
		}
	}

	task := engineapi.TaskSpec{ContainerSpec: cs, RestartPolicy: restartPolicy(spec.Restart)}
	lim := &engineapi.Limit{NanoCPUs: int64(spec.Resources.CPUs * 1e9), Pids: spec.Resources.PidsLimit}
	if spec.Resources.Memory != "" {
		n, err := runtime.ParseBytes(spec.Resources.Memory)
		if err != nil {
			return engineapi.ServiceSpec{}, runtime.Errorf(runtime.ErrInvalidArgument, "memory: %v", err)
		}
		lim.MemoryBytes = n
	}
	if lim.Pids < 0 { // -1: unlimited, which a service says with 0
		lim.Pids = 0
	}
	if *lim != (engineapi.Limit{}) {
		task.Resources = &engineapi.ResourceRequirements{Limits: lim}
	}
	task.Placement = &engineapi.Placement{Constraints: []string{"node.labels." + NodeLabel + "==true"}}
	if n := spec.Placement.Node; n != "" {
		task.Placement.Constraints = append(task.Placement.Constraints, nodeNameConstraint+n)
	}
	if spec.Log.MaxSize != "" {
		n, err := runtime.ParseBytes(spec.Log.MaxSize)
		if err != nil {
			return engineapi.ServiceSpec{}, runtime.Errorf(runtime.ErrInvalidArgument, "log max size: %v", err)
		}
		opts := map[string]string{"max-size": strconv.FormatInt(n, 10)}
		if spec.Log.MaxFiles > 0 {
			opts["max-file"] = strconv.Itoa(spec.Log.MaxFiles)
		}
		task.LogDriver = &engineapi.Driver{Name: "json-file", Options: opts}
	}

	out := engineapi.ServiceSpec{
		Name:         serviceName(spec.Name),
		Labels:       serviceLabels(spec),
		TaskTemplate: task,
		Mode:         engineapi.ServiceMode{Replicated: &engineapi.ReplicatedService{Replicas: 0}},
		UpdateConfig: &engineapi.UpdateConfig{Parallelism: 1, Order: "stop-first", FailureAction: "continue", Monitor: updateMonitor},
	}
	if len(spec.Ports) > 0 {
		out.EndpointSpec = &engineapi.EndpointSpec{}
		for _, p := range spec.Ports {
			out.EndpointSpec.Ports = append(out.EndpointSpec.Ports, engineapi.PortConfig{
				Protocol: p.Protocol, TargetPort: uint32(p.ContainerPort), PublishedPort: uint32(p.HostPort), PublishMode: "host",
			})
		}
	}
	return out, nil
}

// serviceLabels are the service's labels: the caller's and LabelName.
func serviceLabels(spec runtime.ContainerSpec) map[string]string {
	l := maps.Clone(spec.Labels)
	if l == nil {
		l = map[string]string{}
	}
	l[LabelName] = spec.Name
	return l
}

// containerLabels are the task containers' labels on their node: the
// caller's and LabelName, so that a node's engine tells whose they are.
func containerLabels(spec runtime.ContainerSpec) map[string]string {
	return serviceLabels(spec)
}

// tmpfsOptions translates a tmpfs's options: "size=64m" and "mode=1777"
// are all a service's tmpfs takes on API 1.41.
func tmpfsOptions(t runtime.Tmpfs) (*engineapi.TmpfsOptions, error) {
	var o engineapi.TmpfsOptions
	if t.Options == "" {
		return nil, nil
	}
	for _, opt := range strings.Split(t.Options, ",") {
		k, v, _ := strings.Cut(opt, "=")
		switch k {
		case "size":
			n, err := runtime.ParseBytes(v)
			if err != nil || n <= 0 {
				return nil, runtime.Errorf(runtime.ErrInvalidArgument, "tmpfs %s: invalid size %q", t.Path, v)
			}
			o.SizeBytes = n
		case "mode":
			m, err := strconv.ParseUint(v, 8, 32)
			if err != nil || m > 0o7777 {
				return nil, runtime.Errorf(runtime.ErrInvalidArgument, "tmpfs %s: invalid mode %q", t.Path, v)
			}
			o.Mode = uint32(m)
		default:
			return nil, runtime.Errorf(runtime.ErrInvalidArgument, "tmpfs %s: option %q: a swarm service's tmpfs takes size and mode only", t.Path, k)
		}
	}
	return &o, nil
}

// restartPolicy translates the engine's restart policy names: "always" and
// "unless-stopped" are "any" (a service has no manual stop but scaling to
// 0, which the swarm never undoes), "" and "no" are "none".
func restartPolicy(p runtime.RestartPolicy) *engineapi.RestartPolicy {
	d := restartDelay
	rp := &engineapi.RestartPolicy{Delay: &d}
	switch p.Name {
	case "always", "unless-stopped":
		rp.Condition = "any"
	case "on-failure":
		rp.Condition = "on-failure"
		rp.MaxAttempts = uint64(p.MaxRetries)
	default:
		rp.Condition = "none"
	}
	return rp
}

// fromService reads a service back as the container spec it runs, in the
// contract's terms (sizes as byte counts). What a service cannot hold reads
// back empty: Env (never read back), Network (tasks run on their node's
// default bridge), the unenforced fields, OCIRuntime, the security
// profiles. Ports have no HostIP: they answer on every address of the node.
func fromService(s engineapi.Service) runtime.ContainerSpec {
	spec := runtime.ContainerSpec{Name: containerName(s), Labels: userLabels(s.Spec.Labels)}
	t := s.Spec.TaskTemplate
	if cs := t.ContainerSpec; cs != nil {
		spec.Image = imageRef(cs.Image)
		spec.Cmd = cs.Args
		spec.User = cs.User
		spec.Init = cs.Init != nil && *cs.Init
		spec.Security.ReadOnlyRoot = cs.ReadOnly
		spec.Security.CapDrop = cs.CapabilityDrop
		spec.Security.CapAdd = cs.CapabilityAdd
		if cs.StopGracePeriod != nil {
			spec.StopTimeout = *cs.StopGracePeriod
		}
		for _, u := range cs.Ulimits {
			spec.Resources.Ulimits = append(spec.Resources.Ulimits, runtime.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
		}
		for _, m := range cs.Mounts {
			switch m.Type {
			case "bind":
				spec.Mounts = append(spec.Mounts, runtime.Mount{Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
			case "tmpfs":
				spec.Security.Tmpfs = append(spec.Security.Tmpfs, runtime.Tmpfs{Path: m.Target, Options: tmpfsText(m.TmpfsOptions)})
			}
		}
		if h := cs.Healthcheck; h != nil && len(h.Test) > 0 && h.Test[0] == "CMD" {
			spec.Healthcheck = &runtime.Healthcheck{Test: h.Test[1:], Interval: h.Interval, Timeout: h.Timeout,
				StartPeriod: h.StartPeriod, Retries: h.Retries}
		}
	}
	if r := t.Resources; r != nil && r.Limits != nil {
		spec.Resources.CPUs = float64(r.Limits.NanoCPUs) / 1e9
		if r.Limits.MemoryBytes > 0 {
			spec.Resources.Memory = strconv.FormatInt(r.Limits.MemoryBytes, 10)
		}
		spec.Resources.PidsLimit = r.Limits.Pids
	}
	if rp := t.RestartPolicy; rp != nil {
		switch rp.Condition {
		case "any", "":
			spec.Restart.Name = "always"
		case "on-failure":
			spec.Restart = runtime.RestartPolicy{Name: "on-failure", MaxRetries: int(rp.MaxAttempts)}
		case "none":
			spec.Restart.Name = "no"
		}
	}
	spec.Placement.Node = placementNode(t.Placement)
	if d := t.LogDriver; d != nil {
		spec.Log.MaxSize = d.Options["max-size"]
		spec.Log.MaxFiles, _ = strconv.Atoi(d.Options["max-file"])
	}
	if e := s.Spec.EndpointSpec; e != nil {
		for _, p := range e.Ports {
			proto := p.Protocol
			if proto == "" {
				proto = "tcp"
			}
			spec.Ports = append(spec.Ports, runtime.PortBinding{HostPort: int(p.PublishedPort), ContainerPort: int(p.TargetPort), Protocol: proto})
		}
	}
	return spec
}

// containerName is the container name a service stands for.
func containerName(s engineapi.Service) string {
	if n := s.Spec.Labels[LabelName]; n != "" {
		return n
	}
	return s.Spec.Name
}

// userLabels returns labels without the plugin's own.
func userLabels(l map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range l {
		if !strings.HasPrefix(k, labelPrefix) {
			out[k] = v
		}
	}
	return out
}

// imageRef drops the digest the engine may pin a service's image to
// ("name:tag@sha256:..."), leaving the reference asked for.
func imageRef(image string) string {
	if i := strings.Index(image, "@sha256:"); i > 0 {
		return image[:i]
	}
	return image
}

// placementNode returns the node a placement pins to, "" when none.
func placementNode(p *engineapi.Placement) string {
	if p == nil {
		return ""
	}
	for _, c := range p.Constraints {
		if n, ok := strings.CutPrefix(strings.ReplaceAll(c, " ", ""), nodeNameConstraint); ok {
			return n
		}
	}
	return ""
}

// tmpfsText reads a tmpfs's options back: "size=<bytes>" and
// "mode=<octal>", comma-separated, "" when neither is set.
func tmpfsText(o *engineapi.TmpfsOptions) string {
	if o == nil {
		return ""
	}
	var parts []string
	if o.SizeBytes > 0 {
		parts = append(parts, fmt.Sprintf("size=%d", o.SizeBytes))
	}
	if o.Mode != 0 {
		parts = append(parts, fmt.Sprintf("mode=%o", o.Mode))
	}
	return strings.Join(parts, ",")
}
