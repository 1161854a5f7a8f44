package main

import (
	"log/slog"
	"strconv"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// notifier speaks sd_notify to systemd. Outside systemd (no
// NOTIFY_SOCKET) every call is a silent no-op.
type notifier struct {
	log *slog.Logger
}

func newNotifier(log *slog.Logger) *notifier { return &notifier{log: log} }

func (n *notifier) send(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.log.Warn("sd_notify", "err", err)
	}
}

func (n *notifier) ready(status string) { n.send("READY=1\nSTATUS=" + status) }
func (n *notifier) status(s string)     { n.send("STATUS=" + s) }
func (n *notifier) stopping()           { n.send("STOPPING=1\nSTATUS=stopping") }
func (n *notifier) watchdog()           { n.send(daemon.SdNotifyWatchdog) }

func (n *notifier) reloading() {
	n.send("RELOADING=1\nSTATUS=reloading the config\nMONOTONIC_USEC=" + monotonicUsec())
}

// watchdogInterval returns systemd's WatchdogSec for this process, 0 when
// the watchdog is off.
func (n *notifier) watchdogInterval() time.Duration {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		n.log.Warn("watchdog settings", "err", err)
		return 0
	}
	return d
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, which systemd wants
// beside RELOADING=1.
func monotonicUsec() string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return "0"
	}
	return strconv.FormatInt(ts.Nano()/1000, 10)
}
