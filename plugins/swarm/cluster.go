package swarm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zaki-platform/zaki-agent/plugins/internal/engineapi"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// Nodes lists the swarm's nodes that instances may run on (label
// zaki.node=true), by their zaki.node.name label, sorted: ready when the
// manager sees them ready and active, with the reason otherwise. A node
// without a name label is left out (it is not provisioned).
func (r *Runtime) Nodes(ctx context.Context) ([]runtime.Node, error) {
	ns, err := r.api.Nodes(ctx, nil)
	if err != nil {
		return nil, wrap(err, "list nodes")
	}
	var out []runtime.Node
	for _, n := range ns {
		if n.Spec.Labels[NodeLabel] != "true" || n.Spec.Labels[NodeNameLabel] == "" {
			continue
		}
		out = append(out, node(n))
	}
	slices.SortFunc(out, func(a, b runtime.Node) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// node reads a swarm node as a runtime.Node.
func node(n engineapi.Node) runtime.Node {
	out := runtime.Node{Name: n.Spec.Labels[NodeNameLabel], Addr: n.Status.Addr}
	switch {
	case n.Status.State != "ready":
		out.Reason = fmt.Sprintf("node %s is %s", out.Name, n.Status.State)
		if n.Status.Message != "" {
			out.Reason += ": " + n.Status.Message
		}
	case n.Spec.Availability != "active":
		out.Reason = fmt.Sprintf("node %s is ready but its availability is %q (no new tasks)", out.Name, n.Spec.Availability)
	default:
		out.Ready = true
	}
	return out
}

// prepareMount is where the job sees the parent of the directory.
const prepareMount = "/zaki-prepare"

// PrepareDir makes spec.Path on spec.Node a directory of mode 0700 owned
// by spec.UID:spec.GID with a one-shot task (a service of one replica
// that is never restarted, constrained to the node, removed afterwards,
// its container with it; a replicated-job service would leave each
// completed task's container on the node on 20.10): Config.PrepareImage's
// "/gateway-stub -exec mkdir", as root with CHOWN, FOWNER and
// DAC_OVERRIDE only, with the path's parent directory bind-mounted. The
// parent must exist on the node (the agent's state dir, made by
// provisioning): a missing one is ErrUnavailable, as the node rejects the
// job. ErrNotFound when there is no such node, ErrUnavailable when it is
// not ready or the job fails.
func (r *Runtime) PrepareDir(ctx context.Context, spec runtime.DirSpec) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	nodes, err := r.Nodes(ctx)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(nodes, func(n runtime.Node) bool { return n.Name == spec.Node })
	if i < 0 {
		return runtime.Errorf(runtime.ErrNotFound, "prepare dir %s: no node %q in the swarm", spec.Path, spec.Node)
	}
	if !nodes[i].Ready {
		return runtime.Errorf(runtime.ErrUnavailable, "prepare dir %s: %s", spec.Path, nodes[i].Reason)
	}

	what := fmt.Sprintf("prepare dir %s on node %s", spec.Path, spec.Node)
	job := prepareJob(spec, r.prepareImage)
	created, err := r.api.CreateService(ctx, job)
	if err != nil {
		return wrap(err, what)
	}
	defer func() { // the job goes, whatever happened
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := r.api.RemoveService(rctx, created.ID); err != nil && runtime.Class(err) != runtime.ErrNotFound {
			r.log.Warn("remove a prepare-dir job", "job", job.Name, "err", err)
		}
	}()
	for {
		ts, err := r.api.Tasks(ctx, engineapi.Filters{"service": {created.ID}})
		if err != nil {
			return wrap(err, what)
		}
		if t := newest(ts); t != nil && final(t.Status.State) {
			switch {
			case t.Status.State == engineapi.TaskComplete:
				return nil
			case t.Status.State == engineapi.TaskRejected || !started(*t):
				return runtime.Errorf(runtime.ErrUnavailable, "%s: the node refused the job (does %s exist there, and the image %s?): %s",
					what, filepath.Dir(spec.Path), r.prepareImage, taskErr(*t))
			default:
				return runtime.Errorf(runtime.ErrUnavailable, "%s: the job failed (exit code %d): %s",
					what, t.Status.ContainerStatus.ExitCode, r.jobOutput(ctx, created.ID, taskErr(*t)))
			}
		}
		if err := sleep(ctx, waitPoll); err != nil {
			return wrap(err, what)
		}
	}
}

// prepareJob is the one-shot service of PrepareDir.
func prepareJob(spec runtime.DirSpec, image string) engineapi.ServiceSpec {
	var b [5]byte
	rand.Read(b[:])
	pids := int64(16)
	return engineapi.ServiceSpec{
		Name:   "zaki-prepare-" + hex.EncodeToString(b[:]),
		Labels: map[string]string{labelPrepare: spec.Node},
		TaskTemplate: engineapi.TaskSpec{
			ContainerSpec: &engineapi.ContainerSpec{
				Image:   image,
				Command: []string{"/gateway-stub", "-exec", "mkdir", prepareMount + "/" + filepath.Base(spec.Path), strconv.Itoa(spec.UID), strconv.Itoa(spec.GID)},
				User:    "0:0",
				Mounts: []engineapi.Mount{{Type: "bind", Source: filepath.Dir(spec.Path), Target: prepareMount,
					BindOptions: &engineapi.BindOptions{NonRecursive: true}}},
				ReadOnly:       true,
				CapabilityDrop: []string{"ALL"},
				CapabilityAdd:  []string{"CAP_CHOWN", "CAP_FOWNER", "CAP_DAC_OVERRIDE"},
				Labels:         map[string]string{labelPrepare: spec.Node},
			},
			Resources:     &engineapi.ResourceRequirements{Limits: &engineapi.Limit{Pids: pids}},
			RestartPolicy: &engineapi.RestartPolicy{Condition: "none"},
			Placement: &engineapi.Placement{Constraints: []string{
				"node.labels." + NodeLabel + "==true", nodeNameConstraint + spec.Node}},
		},
		Mode: engineapi.ServiceMode{Replicated: &engineapi.ReplicatedService{Replicas: 1}},
	}
}

// jobOutput returns the start of a job's output (what its command said
// of its failure), or fallback when there is none.
func (r *Runtime) jobOutput(ctx context.Context, id, fallback string) string {
	rc, err := r.api.ServiceLogs(ctx, id, engineapi.LogsOptions{})
	if err != nil {
		return fallback
	}
	defer rc.Close()
	b, _ := io.ReadAll(io.LimitReader(engineapi.Merge(rc), 1024))
	if s := strings.TrimSpace(string(b)); s != "" {
		return s
	}
	return fallback
}
