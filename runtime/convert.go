package runtime

import (
	"maps"
	"time"

	pb "github.com/zaki-platform/zaki-agent/runtime/proto"
)

// Conversions between runtime's types and their protobuf messages. Every
// field travels; empty slices and maps arrive as nil, durations as int64
// nanoseconds and times as Unix nanoseconds (0 for the zero time).

func timeToPB(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func timeFromPB(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

func mapOrNil(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

func sliceOrNil(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return append([]string(nil), s...)
}

// convertSlice converts each element of in; nil when in is empty.
func convertSlice[T, U any](in []T, f func(T) U) []U {
	if len(in) == 0 {
		return nil
	}
	out := make([]U, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

func infoToPB(i Info) *pb.InfoResponse {
	return &pb.InfoResponse{
		Runtime:         i.Runtime,
		EngineVersion:   i.EngineVersion,
		ApiVersion:      i.APIVersion,
		Os:              i.OS,
		Arch:            i.Arch,
		CgroupVersion:   i.CgroupVersion,
		SecurityOptions: sliceOrNil(i.SecurityOptions),
		ImageEvents:     i.ImageEvents,
		OciRuntimes:     sliceOrNil(i.OCIRuntimes),
		Unenforced:      sliceOrNil(i.Unenforced),
		Capabilities:    sliceOrNil(i.Capabilities),
	}
}

func infoFromPB(i *pb.InfoResponse) Info {
	return Info{
		Runtime:         i.GetRuntime(),
		EngineVersion:   i.GetEngineVersion(),
		APIVersion:      i.GetApiVersion(),
		OS:              i.GetOs(),
		Arch:            i.GetArch(),
		CgroupVersion:   i.GetCgroupVersion(),
		SecurityOptions: sliceOrNil(i.GetSecurityOptions()),
		ImageEvents:     i.GetImageEvents(),
		OCIRuntimes:     sliceOrNil(i.GetOciRuntimes()),
		Unenforced:      sliceOrNil(i.GetUnenforced()),
		Capabilities:    sliceOrNil(i.GetCapabilities()),
	}
}

func networkSpecToPB(s NetworkSpec) *pb.NetworkSpec {
	return &pb.NetworkSpec{Name: s.Name, Driver: s.Driver, DisableIcc: s.DisableICC, Labels: mapOrNil(s.Labels)}
}

func networkSpecFromPB(s *pb.NetworkSpec) NetworkSpec {
	return NetworkSpec{Name: s.GetName(), Driver: s.GetDriver(), DisableICC: s.GetDisableIcc(), Labels: mapOrNil(s.GetLabels())}
}

func specToPB(s ContainerSpec) *pb.ContainerSpec {
	out := &pb.ContainerSpec{
		Name:   s.Name,
		Image:  s.Image,
		Cmd:    sliceOrNil(s.Cmd),
		Env:    mapOrNil(s.Env),
		Labels: mapOrNil(s.Labels),
		User:   s.User,
		Init:   s.Init,
		Resources: &pb.Resources{
			Cpus:       s.Resources.CPUs,
			CpuShares:  s.Resources.CPUShares,
			Memory:     s.Resources.Memory,
			MemorySwap: s.Resources.MemorySwap,
			PidsLimit:  s.Resources.PidsLimit,
			Ulimits: convertSlice(s.Resources.Ulimits, func(u Ulimit) *pb.Ulimit {
				return &pb.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard}
			}),
		},
		Security: &pb.Security{
			ReadOnlyRoot: s.Security.ReadOnlyRoot,
			Tmpfs: convertSlice(s.Security.Tmpfs, func(t Tmpfs) *pb.Tmpfs {
				return &pb.Tmpfs{Path: t.Path, Options: t.Options}
			}),
			CapDrop:         sliceOrNil(s.Security.CapDrop),
			CapAdd:          sliceOrNil(s.Security.CapAdd),
			NoNewPrivileges: s.Security.NoNewPrivileges,
			SeccompProfile:  s.Security.SeccompProfile,
			ApparmorProfile: s.Security.ApparmorProfile,
		},
		Restart: &pb.RestartPolicy{Name: s.Restart.Name, MaxRetries: int64(s.Restart.MaxRetries)},
		Network: s.Network,
		Ports: convertSlice(s.Ports, func(p PortBinding) *pb.PortBinding {
			return &pb.PortBinding{HostIp: p.HostIP, HostPort: int64(p.HostPort), ContainerPort: int64(p.ContainerPort), Protocol: p.Protocol}
		}),
		Mounts: convertSlice(s.Mounts, func(m Mount) *pb.Mount {
			return &pb.Mount{Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly}
		}),
		StopTimeoutNs: int64(s.StopTimeout),
		OciRuntime:    s.OCIRuntime,
	}
	if s.Placement != (Placement{}) {
		out.Placement = &pb.Placement{Node: s.Placement.Node}
	}
	if s.Log != (LogConfig{}) {
		out.Log = &pb.LogConfig{MaxSize: s.Log.MaxSize, MaxFiles: int64(s.Log.MaxFiles)}
	}
	if h := s.Healthcheck; h != nil {
		out.Healthcheck = &pb.Healthcheck{
			Test:          sliceOrNil(h.Test),
			IntervalNs:    int64(h.Interval),
			TimeoutNs:     int64(h.Timeout),
			StartPeriodNs: int64(h.StartPeriod),
			Retries:       int64(h.Retries),
		}
	}
	return out
}

func specFromPB(s *pb.ContainerSpec) ContainerSpec {
	r, sec := s.GetResources(), s.GetSecurity()
	out := ContainerSpec{
		Name:   s.GetName(),
		Image:  s.GetImage(),
		Cmd:    sliceOrNil(s.GetCmd()),
		Env:    mapOrNil(s.GetEnv()),
		Labels: mapOrNil(s.GetLabels()),
		User:   s.GetUser(),
		Init:   s.GetInit(),
		Resources: Resources{
			CPUs:       r.GetCpus(),
			CPUShares:  r.GetCpuShares(),
			Memory:     r.GetMemory(),
			MemorySwap: r.GetMemorySwap(),
			PidsLimit:  r.GetPidsLimit(),
			Ulimits: convertSlice(r.GetUlimits(), func(u *pb.Ulimit) Ulimit {
				return Ulimit{Name: u.GetName(), Soft: u.GetSoft(), Hard: u.GetHard()}
			}),
		},
		Security: Security{
			ReadOnlyRoot: sec.GetReadOnlyRoot(),
			Tmpfs: convertSlice(sec.GetTmpfs(), func(t *pb.Tmpfs) Tmpfs {
				return Tmpfs{Path: t.GetPath(), Options: t.GetOptions()}
			}),
			CapDrop:         sliceOrNil(sec.GetCapDrop()),
			CapAdd:          sliceOrNil(sec.GetCapAdd()),
			NoNewPrivileges: sec.GetNoNewPrivileges(),
			SeccompProfile:  sec.GetSeccompProfile(),
			ApparmorProfile: sec.GetApparmorProfile(),
		},
		Restart: RestartPolicy{Name: s.GetRestart().GetName(), MaxRetries: int(s.GetRestart().GetMaxRetries())},
		Network: s.GetNetwork(),
		Ports: convertSlice(s.GetPorts(), func(p *pb.PortBinding) PortBinding {
			return PortBinding{HostIP: p.GetHostIp(), HostPort: int(p.GetHostPort()), ContainerPort: int(p.GetContainerPort()), Protocol: p.GetProtocol()}
		}),
		Mounts: convertSlice(s.GetMounts(), func(m *pb.Mount) Mount {
			return Mount{Source: m.GetSource(), Target: m.GetTarget(), ReadOnly: m.GetReadOnly()}
		}),
		StopTimeout: time.Duration(s.GetStopTimeoutNs()),
		Log:         LogConfig{MaxSize: s.GetLog().GetMaxSize(), MaxFiles: int(s.GetLog().GetMaxFiles())},
		OCIRuntime:  s.GetOciRuntime(),
		Placement:   Placement{Node: s.GetPlacement().GetNode()},
	}
	if h := s.GetHealthcheck(); h != nil {
		out.Healthcheck = &Healthcheck{
			Test:        sliceOrNil(h.GetTest()),
			Interval:    time.Duration(h.GetIntervalNs()),
			Timeout:     time.Duration(h.GetTimeoutNs()),
			StartPeriod: time.Duration(h.GetStartPeriodNs()),
			Retries:     int(h.GetRetries()),
		}
	}
	return out
}

func containerToPB(c Container) *pb.Container {
	return &pb.Container{
		Id:               c.ID,
		Name:             c.Name,
		Image:            c.Image,
		ImageId:          c.ImageID,
		State:            string(c.State),
		Health:           c.Health,
		ExitCode:         int64(c.ExitCode),
		OomKilled:        c.OOMKilled,
		RestartCount:     int64(c.RestartCount),
		CreatedAtUnixNs:  timeToPB(c.CreatedAt),
		StartedAtUnixNs:  timeToPB(c.StartedAt),
		FinishedAtUnixNs: timeToPB(c.FinishedAt),
		Spec:             specToPB(c.Spec),
		Node:             c.Node,
		NodeAddr:         c.NodeAddr,
	}
}

func containerFromPB(c *pb.Container) Container {
	return Container{
		ID:           c.GetId(),
		Name:         c.GetName(),
		Image:        c.GetImage(),
		ImageID:      c.GetImageId(),
		State:        State(c.GetState()),
		Health:       c.GetHealth(),
		ExitCode:     int(c.GetExitCode()),
		OOMKilled:    c.GetOomKilled(),
		RestartCount: int(c.GetRestartCount()),
		CreatedAt:    timeFromPB(c.GetCreatedAtUnixNs()),
		StartedAt:    timeFromPB(c.GetStartedAtUnixNs()),
		FinishedAt:   timeFromPB(c.GetFinishedAtUnixNs()),
		Spec:         specFromPB(c.GetSpec()),
		Node:         c.GetNode(),
		NodeAddr:     c.GetNodeAddr(),
	}
}

func eventToPB(e Event) *pb.Event {
	return &pb.Event{
		Action:     string(e.Action),
		Image:      e.Image,
		Id:         e.ID,
		Name:       e.Name,
		Labels:     mapOrNil(e.Labels),
		ExitCode:   int64(e.ExitCode),
		Health:     e.Health,
		TimeUnixNs: timeToPB(e.Time),
	}
}

func eventFromPB(e *pb.Event) Event {
	return Event{
		Action:   EventAction(e.GetAction()),
		Image:    e.GetImage(),
		ID:       e.GetId(),
		Name:     e.GetName(),
		Labels:   mapOrNil(e.GetLabels()),
		ExitCode: int(e.GetExitCode()),
		Health:   e.GetHealth(),
		Time:     timeFromPB(e.GetTimeUnixNs()),
	}
}

func execResultToPB(r ExecResult) *pb.ExecResponse {
	return &pb.ExecResponse{
		ExitCode:        int64(r.ExitCode),
		Stdout:          r.Stdout,
		Stderr:          r.Stderr,
		StdoutTruncated: r.StdoutTruncated,
		StderrTruncated: r.StderrTruncated,
	}
}

func execResultFromPB(r *pb.ExecResponse) ExecResult {
	return ExecResult{
		ExitCode:        int(r.GetExitCode()),
		Stdout:          r.GetStdout(),
		Stderr:          r.GetStderr(),
		StdoutTruncated: r.GetStdoutTruncated(),
		StderrTruncated: r.GetStderrTruncated(),
	}
}

func nodeToPB(n Node) *pb.Node {
	return &pb.Node{Name: n.Name, Addr: n.Addr, Ready: n.Ready, Reason: n.Reason}
}

func nodeFromPB(n *pb.Node) Node {
	return Node{Name: n.GetName(), Addr: n.GetAddr(), Ready: n.GetReady(), Reason: n.GetReason()}
}

func dirSpecToPB(d DirSpec) *pb.PrepareDirRequest {
	return &pb.PrepareDirRequest{Node: d.Node, Path: d.Path, Uid: int64(d.UID), Gid: int64(d.GID)}
}

func dirSpecFromPB(d *pb.PrepareDirRequest) DirSpec {
	return DirSpec{Node: d.GetNode(), Path: d.GetPath(), UID: int(d.GetUid()), GID: int(d.GetGid())}
}
