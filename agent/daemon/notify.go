package daemon

import (
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	systemd "github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// notifier speaks sd_notify to systemd. Outside systemd (no
// NOTIFY_SOCKET) every call is a silent no-op.
//
// Messages go out in order from one goroutine of their own: a notify
// socket that is not read (a full datagram queue blocks the write) must
// never stall the agent's main loop, or SIGTERM would go unheard. When
// the queue is full a message is dropped and said so; a stuck socket also
// stops the watchdog pings, which is what the watchdog is for.
type notifier struct {
	log  *slog.Logger
	ch   chan string
	done chan struct{}
}

// notifyQueue is how many messages may wait for the socket.
const notifyQueue = 64

func newNotifier(log *slog.Logger) *notifier {
	n := &notifier{log: log}
	if os.Getenv("NOTIFY_SOCKET") == "" {
		return n
	}
	n.ch, n.done = make(chan string, notifyQueue), make(chan struct{})
	go func() {
		defer close(n.done)
		for state := range n.ch {
			if _, err := systemd.SdNotify(false, state); err != nil {
				n.log.Warn("sd_notify", "err", err)
			}
		}
	}()
	return n
}

func (n *notifier) send(state string) {
	if n.ch == nil {
		return
	}
	select {
	case n.ch <- state:
	default:
		n.log.Warn("sd_notify: the notify socket does not keep up; message dropped", "message", strings.SplitN(state, "\n", 2)[0])
	}
}

// close sends what is queued, waiting at most wait.
func (n *notifier) close(wait time.Duration) {
	if n.ch == nil {
		return
	}
	close(n.ch)
	select {
	case <-n.done:
	case <-time.After(wait):
		n.log.Warn("sd_notify: messages left unsent at exit")
	}
}

func (n *notifier) ready(status string) { n.send("READY=1\nSTATUS=" + status) }
func (n *notifier) status(s string)     { n.send("STATUS=" + s) }
func (n *notifier) stopping()           { n.send("STOPPING=1\nSTATUS=stopping") }
func (n *notifier) watchdog()           { n.send(systemd.SdNotifyWatchdog) }

func (n *notifier) reloading() {
	n.send("RELOADING=1\nSTATUS=reloading the config\nMONOTONIC_USEC=" + monotonicUsec())
}

// watchdogInterval returns systemd's WatchdogSec for this process, 0 when
// the watchdog is off.
func (n *notifier) watchdogInterval() time.Duration {
	d, err := systemd.SdWatchdogEnabled(false)
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
