package runtimetest

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// testInvalid: bad input is ErrInvalidArgument and creates nothing.
func (s *suite) testInvalid(t *testing.T) {
	spec := func(what string, edit func(*runtime.ContainerSpec)) runtime.ContainerSpec {
		sp := s.simpleSpec(s.name("invalid-"+what), nil)
		edit(&sp)
		return sp
	}
	create := func(sp runtime.ContainerSpec) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := s.rt.Create(ctx, sp)
			return err
		}
	}
	cases := []struct {
		name string
		spec *runtime.ContainerSpec // a Create that must leave no container named spec.Name
		call func(context.Context) error
	}{
		{name: "CreateName", spec: ptr(spec("name", func(sp *runtime.ContainerSpec) { sp.Name = "bad name!" }))},
		{name: "CreateNameDash", spec: ptr(spec("dash", func(sp *runtime.ContainerSpec) { sp.Name = "-rm" }))},
		{name: "Memory", spec: ptr(spec("memory", func(sp *runtime.ContainerSpec) { sp.Resources.Memory = "2x" }))},
		{name: "EmptyImage", spec: ptr(spec("image", func(sp *runtime.ContainerSpec) { sp.Image = "" }))},
		{name: "EnvKey", spec: ptr(spec("envkey", func(sp *runtime.ContainerSpec) { sp.Env = map[string]string{"A=B": "x"} }))},
		{name: "EnvValue", spec: ptr(spec("envvalue", func(sp *runtime.ContainerSpec) { sp.Env = map[string]string{"A": "x\nB=y"} }))},
		{name: "EnvLine", spec: ptr(spec("envline", func(sp *runtime.ContainerSpec) {
			sp.Env = map[string]string{"A": strings.Repeat("x", runtime.MaxEnvLine-1)} // "A=" + value: one byte over
		}))},
		{name: "LogSize", spec: ptr(spec("logsize", func(sp *runtime.ContainerSpec) { sp.Log.MaxSize = "10x" }))},
		{name: "LogFiles", spec: ptr(spec("logfiles", func(sp *runtime.ContainerSpec) { sp.Log.MaxFiles = 3 }))},
		{name: "OCIRuntimePath", spec: ptr(spec("ocipath", func(sp *runtime.ContainerSpec) { sp.OCIRuntime = "/usr/bin/runsc" }))},
		{name: "OCIRuntimeFlag", spec: ptr(spec("ociflag", func(sp *runtime.ContainerSpec) { sp.OCIRuntime = "--privileged" }))},
		{name: "Seccomp", spec: ptr(spec("seccomp", func(sp *runtime.ContainerSpec) { sp.Security.SeccompProfile = "unconfined" }))},
		{name: "MountSource", spec: ptr(spec("mountsrc", func(sp *runtime.ContainerSpec) {
			sp.Mounts = []runtime.Mount{{Source: "data", Target: "/data"}}
		}))},
		{name: "MountTarget", spec: ptr(spec("mounttgt", func(sp *runtime.ContainerSpec) {
			sp.Mounts = []runtime.Mount{{Source: "/tmp", Target: "data"}}
		}))},
		{name: "RestartPolicy", spec: ptr(spec("restart", func(sp *runtime.ContainerSpec) { sp.Restart.Name = "sometimes" }))},
		{name: "Start", call: func(ctx context.Context) error { return s.rt.Start(ctx, "-x") }},
		{name: "Stop", call: func(ctx context.Context) error { return s.rt.Stop(ctx, []string{"-x"}, 0) }},
		{name: "Restart", call: func(ctx context.Context) error { return s.rt.Restart(ctx, "-x", 0) }},
		{name: "Pause", call: func(ctx context.Context) error { return s.rt.Pause(ctx, "-x") }},
		{name: "Resume", call: func(ctx context.Context) error { return s.rt.Resume(ctx, "-x") }},
		{name: "Remove", call: func(ctx context.Context) error {
			return s.rt.Remove(ctx, []string{"-x"}, runtime.RemoveOptions{Force: true})
		}},
		{name: "Inspect", call: func(ctx context.Context) error { _, err := s.rt.Inspect(ctx, "-x"); return err }},
		{name: "Logs", call: func(ctx context.Context) error { return s.logsErr(ctx, "-x") }},
		{name: "ImageID", call: func(ctx context.Context) error { _, err := s.rt.ImageID(ctx, "-x"); return err }},
		{name: "PullImage", call: func(ctx context.Context) error { return s.rt.PullImage(ctx, "-x", nil) }},
		{name: "EnsureNetwork", call: func(ctx context.Context) error {
			return s.rt.EnsureNetwork(ctx, runtime.NetworkSpec{Name: "-x"})
		}},
		{name: "RemoveNetwork", call: func(ctx context.Context) error { return s.rt.RemoveNetwork(ctx, "-x") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := s.ctx(t)
			call := tc.call
			if tc.spec != nil {
				call = create(*tc.spec)
				if runtime.ValidateName(tc.spec.Name) == nil {
					s.removeLater(t, tc.spec.Name)
				}
			}
			err := call(ctx)
			if got := runtime.Class(err); got != runtime.ErrInvalidArgument {
				t.Fatalf("got error %v (class %v), want class %v", err, got, runtime.ErrInvalidArgument)
			}
			if tc.spec != nil && runtime.ValidateName(tc.spec.Name) == nil {
				_, err := s.rt.Inspect(ctx, tc.spec.Name)
				if runtime.Class(err) != runtime.ErrNotFound {
					t.Errorf("inspect %s after the refused create: got %v, want class %v (a refused spec reaches no engine)",
						tc.spec.Name, err, runtime.ErrNotFound)
				}
			}
		})
	}
}

// logsErr opens a container's logs and reads them to the end, returning
// the first error: a runtime may report a bad reference when it opens the
// stream or when it is read.
func (s *suite) logsErr(ctx context.Context, ref string) error {
	rc, err := s.rt.Logs(ctx, ref, runtime.LogOptions{})
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.ReadAll(rc)
	return err
}

func ptr[T any](v T) *T { return &v }
