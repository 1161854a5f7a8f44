package podman

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/zaki-platform/zaki-agent/internal/ctxwait"
	"github.com/zaki-platform/zaki-agent/plugins/internal/cli"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// Podman has no docker's enable_icc=false. On a netavark bridge, the
// containers of one network reach each other through the bridge, and
// netavark's firewall rules accept whatever comes from the network's
// subnet. Its isolate option only drops traffic between two isolated
// networks. The nearest equivalent of docker's setting is docker's own
// mechanism: one rule at the top of the FORWARD chain that drops what the
// bridge would forward from one of its ports to another,
//
//	iptables -I FORWARD -i podmanN -o podmanN -m comment --comment zaki-icc-off:NAME -j DROP
//
// which sees bridged traffic only while br_netfilter passes it to
// iptables (net.bridge.bridge-nf-call-iptables=1, as docker sets it). The
// containers still reach the host (their gateway), the published ports
// still reach them, and traffic to other isolated networks is dropped by
// netavark. IPv4 only: the networks EnsureNetwork creates have no IPv6.

// EnsureNetwork creates the network unless one of that name exists: one
// `podman network create`, whose "already exists" is success. An existing
// network keeps its options. With DisableICC, the network is a bridge
// created with netavark's isolate option and the containers on it are
// kept from reaching each other by the firewall rule above, which is
// (re)made on every call: it does not survive a reboot, the network does.
func (p *Podman) EnsureNetwork(ctx context.Context, spec runtime.NetworkSpec) error {
	if spec.DisableICC && spec.Driver != "" && spec.Driver != "bridge" {
		return runtime.Errorf(runtime.ErrInvalidArgument, "network %q: inter-container traffic can be turned off on a bridge only, not %q", spec.Name, spec.Driver)
	}
	if err := p.Engine.EnsureNetwork(ctx, spec); err != nil {
		return err
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
	if err := p.Engine.RemoveNetwork(ctx, name); err != nil {
		return err
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
		_, err := p.RunClient(ctx, args...)
		var ee *cli.ExitError
		if err == nil || attempt == 5 || !errors.As(err, &ee) || !strings.Contains(ee.Stderr, "no such network interface") {
			return err
		}
		if !ctxwait.Sleep(ctx, delay) {
			return err
		}
		delay *= 2
	}
}

// iccComment marks the rule of one network.
func iccComment(network string) string { return "zaki-icc-off:" + network }

// bridgeNF is the switch that hands bridged traffic to iptables.
const bridgeNF = "/proc/sys/net/bridge/bridge-nf-call-iptables"

// iccOff makes sure the rule of network is in place.
func (p *Podman) iccOff(ctx context.Context, network string) error {
	res, err := p.RunClient(ctx, "network", "inspect", "--format", "{{.NetworkInterface}}", "--", network)
	if err != nil {
		return fmt.Errorf("turn inter-container traffic off: %w", err)
	}
	iface := strings.TrimSpace(string(res.Stdout))
	if iface == "" || strings.ContainsAny(iface, " \t\n") {
		return fmt.Errorf("turn inter-container traffic off: network %q has no bridge interface (%q)", network, iface)
	}
	if err := p.bridgeNetfilter(ctx); err != nil {
		return fmt.Errorf("turn inter-container traffic off: %w", err)
	}
	rule := []string{"FORWARD", "-i", iface, "-o", iface, "-m", "comment", "--comment", iccComment(network), "-j", "DROP"}
	_, err = p.ipt.Run(ctx, append([]string{"-w", "-C"}, rule...)...)
	var ee *cli.ExitError
	switch {
	case err == nil:
		return nil // in place
	case errors.As(err, &ee) && ee.ExitCode == 1:
		// Missing: insert it first, ahead of netavark's and docker's.
		if _, err := p.ipt.Run(ctx, append([]string{"-w", "-I"}, rule...)...); err != nil {
			return fmt.Errorf("turn inter-container traffic off: %w", err)
		}
		return nil
	default:
		return fmt.Errorf("turn inter-container traffic off: %w", err)
	}
}

// bridgeNetfilter makes sure bridged traffic goes through iptables:
// br_netfilter loaded, bridge-nf-call-iptables on.
func (p *Podman) bridgeNetfilter(ctx context.Context) error {
	if _, err := os.Stat(bridgeNF); err != nil {
		if out, err := exec.CommandContext(ctx, "modprobe", "br_netfilter").CombinedOutput(); err != nil {
			return runtime.Errorf(runtime.ErrUnavailable, "modprobe br_netfilter: %v: %s", err, strings.TrimSpace(string(out)))
		}
	}
	b, err := os.ReadFile(bridgeNF)
	if err != nil {
		return runtime.Errorf(runtime.ErrUnavailable, "bridge netfilter: %w", err)
	}
	if strings.TrimSpace(string(b)) == "1" {
		return nil
	}
	if err := os.WriteFile(bridgeNF, []byte("1\n"), 0o644); err != nil {
		return runtime.Errorf(runtime.ErrUnavailable, "bridge netfilter: %w", err)
	}
	return nil
}

// iccRemove deletes every rule of network (there is one, unless two
// ensures raced). Without iptables on this host there is none.
func (p *Podman) iccRemove(ctx context.Context, network string) error {
	res, err := p.ipt.Run(ctx, "-w", "-S", "FORWARD")
	if errors.Is(err, exec.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list firewall rules: %w", err)
	}
	for _, rule := range iccRules(string(res.Stdout), network) {
		if _, err := p.ipt.Run(ctx, append([]string{"-w", "-D"}, rule...)...); err != nil {
			return fmt.Errorf("delete firewall rule: %w", err)
		}
	}
	return nil
}

// iccRules picks network's rules out of `iptables -S FORWARD` output,
// each as the arguments that follow -D (the chain first).
func iccRules(listing, network string) [][]string {
	var out [][]string
	want := iccComment(network)
	for line := range strings.SplitSeq(listing, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "-A" {
			continue
		}
		for i := range f {
			f[i] = strings.Trim(f[i], `"`)
		}
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "--comment" && f[i+1] == want {
				out = append(out, f[1:])
				break
			}
		}
	}
	return out
}
