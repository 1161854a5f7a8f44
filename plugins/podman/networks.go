package podman

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/zaki-platform/zaki-agent/plugins/internal/cli"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// EnsureNetwork creates the network unless one of that name exists: one
// `podman network create`, whose "already exists" is success. An existing
// network keeps its options. With DisableICC, the network is a bridge
// created with netavark's isolate option and the containers on it are
// kept from reaching each other by a firewall rule (icc.go), which is
// (re)made on every call: it does not survive a reboot, the network does.
func (p *Podman) EnsureNetwork(ctx context.Context, spec runtime.NetworkSpec) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	if spec.DisableICC && spec.Driver != "" && spec.Driver != "bridge" {
		return runtime.Errorf(runtime.ErrInvalidArgument, "network %q: inter-container traffic can be turned off on a bridge only, not %q", spec.Name, spec.Driver)
	}
	args := []string{"network", "create"}
	if spec.Driver != "" {
		args = append(args, "--driver="+spec.Driver)
	}
	if spec.DisableICC {
		args = append(args, "--opt=isolate=true")
	}
	for _, k := range slices.Sorted(maps.Keys(spec.Labels)) {
		args = append(args, "--label="+k+"="+spec.Labels[k])
	}
	args = append(args, "--", spec.Name)
	if err := p.createNetwork(ctx, args); err != nil && !errors.Is(err, runtime.ErrAlreadyExists) {
		return fmt.Errorf("ensure network %q: %w", spec.Name, err)
	}
	if spec.DisableICC {
		if err := p.iccOff(ctx, spec.Name); err != nil {
			return fmt.Errorf("ensure network %q: %w", spec.Name, err)
		}
	}
	return nil
}

// RemoveNetwork removes a network, then its firewall rule if it has one;
// a network that does not exist is not an error. A network that
// containers still use is not removed (podman's --force would remove
// them too).
func (p *Podman) RemoveNetwork(ctx context.Context, name string) error {
	if err := runtime.ValidateName(name); err != nil {
		return err
	}
	if _, err := p.run(ctx, "network", "rm", "--", name); err != nil && !notFound(err) {
		return fmt.Errorf("remove network %q: %w", name, err)
	}
	if err := p.iccRemove(ctx, name); err != nil {
		return fmt.Errorf("remove network %q: %w", name, err)
	}
	return nil
}

// createNetwork runs `podman network create`, again when it loses a race
// it cannot help: to pick a free subnet podman lists the host's
// interfaces and their addresses, and an interface that goes away
// between the two (a container of any engine stopping) fails the whole
// command with "route ip+net: no such network interface".
func (p *Podman) createNetwork(ctx context.Context, args []string) error {
	delay := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		_, err := p.run(ctx, args...)
		var ee *cli.ExitError
		if err == nil || attempt == 5 || !errors.As(err, &ee) || !strings.Contains(ee.Stderr, "no such network interface") {
			return err
		}
		if !sleep(ctx, delay) {
			return err
		}
		delay *= 2
	}
}
