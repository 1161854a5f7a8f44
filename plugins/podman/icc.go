package podman

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

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

// iccComment marks the rule of one network.
func iccComment(network string) string { return "zaki-icc-off:" + network }

// bridgeNF is the switch that hands bridged traffic to iptables.
const bridgeNF = "/proc/sys/net/bridge/bridge-nf-call-iptables"

// iccOff makes sure the rule of network is in place.
func (p *Podman) iccOff(ctx context.Context, network string) error {
	res, err := p.run(ctx, "network", "inspect", "--format", "{{.NetworkInterface}}", "--", network)
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
