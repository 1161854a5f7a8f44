package swarm

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/zaki-platform/zaki-agent/plugins/internal/engineapi"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// Inspect returns the container of ref (service ID, unique ID prefix, or
// name), read from its service, its newest task and that task's node:
// three engine calls. ErrNotFound when there is none.
func (r *Runtime) Inspect(ctx context.Context, ref string) (runtime.Container, error) {
	s, err := r.service(ctx, ref)
	if err != nil {
		return runtime.Container{}, err
	}
	ts, err := r.tasks(ctx, s.ID)
	if err != nil {
		return runtime.Container{}, err
	}
	nodes, err := r.nodes(ctx)
	if err != nil {
		return runtime.Container{}, err
	}
	return container(s, ts[s.ID], nodes), nil
}

// List returns the containers whose labels match opts.Labels: the
// plugin's services with those labels, their tasks and the nodes, in
// three engine calls (one more per 100 services).
func (r *Runtime) List(ctx context.Context, opts runtime.ListOptions) ([]runtime.Container, error) {
	svcs, err := r.api.Services(ctx, labelFilters(opts.Labels), false)
	if err != nil {
		return nil, wrap(err, "list services")
	}
	if len(svcs) == 0 {
		return nil, nil
	}
	ids := make([]string, len(svcs))
	for i, s := range svcs {
		ids[i] = s.ID
	}
	ts, err := r.tasks(ctx, ids...)
	if err != nil {
		return nil, err
	}
	nodes, err := r.nodes(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]runtime.Container, 0, len(svcs))
	for _, s := range svcs {
		out = append(out, container(s, ts[s.ID], nodes))
	}
	slices.SortFunc(out, func(a, b runtime.Container) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// labelFilters selects the plugin's services carrying labels (key=value,
// or key alone when the value is "").
func labelFilters(labels map[string]string) engineapi.Filters {
	f := engineapi.Filters{}.Add("label", LabelName)
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if v := labels[k]; v != "" {
			f = f.Add("label", k+"="+v)
		} else {
			f = f.Add("label", k)
		}
	}
	return f
}
