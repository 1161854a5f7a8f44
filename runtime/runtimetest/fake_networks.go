package runtimetest

import (
	"context"
	"fmt"
	"sort"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// builtinNetworks exist in every docker engine and cannot be removed.
var builtinNetworks = map[string]bool{"bridge": true, "host": true, "none": true}

// EnsureNetwork creates the network unless one of that name exists.
func (f *Fake) EnsureNetwork(ctx context.Context, spec runtime.NetworkSpec) error {
	if err := f.begin(ctx, "EnsureNetwork", spec.Validate(), ""); err != nil {
		return fmt.Errorf("ensure network %q: %w", spec.Name, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if builtinNetworks[spec.Name] {
		return nil
	}
	if _, ok := f.networks[spec.Name]; ok {
		return nil
	}
	spec.Labels = cloneMap(spec.Labels)
	if spec.Driver == "" {
		spec.Driver = "bridge"
	}
	f.networks[spec.Name] = spec
	return nil
}

// RemoveNetwork removes a network; a missing one is not an error, a
// built-in one (bridge, host, none) is ErrInvalidArgument.
func (f *Fake) RemoveNetwork(ctx context.Context, name string) error {
	if err := f.begin(ctx, "RemoveNetwork", runtime.ValidateName(name), ""); err != nil {
		return fmt.Errorf("remove network %q: %w", name, err)
	}
	if builtinNetworks[name] {
		return fmt.Errorf("remove network %q: %w", name, runtime.Errorf(runtime.ErrInvalidArgument, "%s is a pre-defined network and cannot be removed", name))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.networks, name)
	return nil
}

// Networks returns the networks created so far (not the built-in ones),
// sorted by name.
func (f *Fake) Networks() []runtime.NetworkSpec {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]runtime.NetworkSpec, 0, len(f.networks))
	for _, n := range f.networks {
		n.Labels = cloneMap(n.Labels)
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// hasNetwork reports whether a container can join name. f.mu must be held.
func (f *Fake) hasNetwork(name string) bool {
	_, ok := f.networks[name]
	return name == "" || builtinNetworks[name] || ok
}
