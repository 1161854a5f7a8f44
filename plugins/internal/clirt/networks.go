package clirt

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// EnsureNetwork creates the network unless one of that name exists: one
// `network create`, whose "already exists" is success. An existing
// network is left as it is, whatever its options.
func (e *Engine) EnsureNetwork(ctx context.Context, spec runtime.NetworkSpec) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	args := []string{"network", "create"}
	if spec.Driver != "" {
		args = append(args, "--driver="+spec.Driver)
	}
	if spec.DisableICC {
		args = append(args, "--opt="+e.d.ICCOff)
	}
	for _, k := range slices.Sorted(maps.Keys(spec.Labels)) {
		args = append(args, "--label="+k+"="+spec.Labels[k])
	}
	args = append(args, "--", spec.Name)
	var err error
	if e.d.CreateNetwork != nil {
		err = e.d.CreateNetwork(ctx, args)
	} else {
		_, err = e.RunClient(ctx, args...)
	}
	if err != nil && !errors.Is(err, runtime.ErrAlreadyExists) {
		return fmt.Errorf("ensure network %q: %w", spec.Name, err)
	}
	return nil
}

// RemoveNetwork removes a network; one that does not exist is not an
// error.
func (e *Engine) RemoveNetwork(ctx context.Context, name string) error {
	if err := runtime.ValidateName(name); err != nil {
		return err
	}
	if _, err := e.RunClient(ctx, "network", "rm", "--", name); err != nil && !NotFound(err) {
		return fmt.Errorf("remove network %q: %w", name, err)
	}
	return nil
}
