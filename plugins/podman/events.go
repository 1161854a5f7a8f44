package podman

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/zaki-platform/zaki-agent/plugins/internal/clirt"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// eventArgs is `podman events` of container events from now on (--since
// now makes podman's file backend read its log from the start and skip
// what came before). Podman's label filter is not docker's: several label
// filters match any one of them, and a key alone matches nothing. So
// podman is given one key=value label of the selector (fewer lines to
// read) and the stream matches the selector itself (Dialect.MatchLabels).
func eventArgs(now time.Time, labels map[string]string, _ []string) []string {
	args := []string{"events", "--format", "json", "--filter=type=container", "--since=" + now.UTC().Format(time.RFC3339Nano)}
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if v := labels[k]; v != "" {
			args = append(args, "--filter=label="+k+"="+v)
			break
		}
	}
	return args
}

// podmanActions maps podman's event statuses onto the runtime's actions.
// Podman says "died" for docker's "die" and "remove" for "destroy"; it
// has no oom event (an OOM kill is a died event with exit code 137; on
// runc and cgroup v1, inspect's OOMKilled stays false too), and `podman
// stop` emits no stop event, only died.
var podmanActions = map[string]runtime.EventAction{
	"create":        runtime.EventCreate,
	"start":         runtime.EventStart,
	"died":          runtime.EventDie,
	"stop":          runtime.EventStop,
	"kill":          runtime.EventKill,
	"remove":        runtime.EventDestroy,
	"restart":       runtime.EventRestart,
	"health_status": runtime.EventHealth,
	"pause":         runtime.EventPause,
	"unpause":       runtime.EventUnpause,
}

// podmanImageActions maps podman's image event statuses onto the
// runtime's: podman says "remove" for docker's "delete".
var podmanImageActions = map[string]runtime.EventAction{
	"tag":    runtime.EventImageTag,
	"untag":  runtime.EventImageUntag,
	"remove": runtime.EventImageDelete,
	"pull":   runtime.EventImagePull,
	"load":   runtime.EventImageLoad,
	"import": runtime.EventImageImport,
}

// parseEvent reads one line of `podman events --format json`; ok is false
// for events the runtime does not follow. The attributes of a container
// event are its labels, nothing else.
func parseEvent(line []byte) (ev runtime.Event, ok bool, err error) {
	var raw struct {
		ID                string
		Name              string
		Status            string
		Type              string
		Time              time.Time
		ContainerExitCode int
		HealthStatus      string `json:"health_status"`
		Attributes        map[string]string
	}
	if err := json.Unmarshal(line, &raw); err != nil {
		return ev, false, fmt.Errorf("parse %q: %w", line, err)
	}
	if raw.Type == "image" {
		action, known := podmanImageActions[raw.Status]
		if !known {
			return ev, false, nil
		}
		return runtime.Event{Action: action, Image: true, ID: clirt.ImageID(raw.ID), Name: raw.Name, Time: raw.Time}, true, nil
	}
	if raw.Type != "container" {
		return ev, false, nil
	}
	action, known := podmanActions[raw.Status]
	if !known {
		return ev, false, nil
	}
	ev = runtime.Event{Action: action, ID: raw.ID, Name: raw.Name, Time: raw.Time}
	if len(raw.Attributes) > 0 {
		ev.Labels = raw.Attributes
	}
	switch action {
	case runtime.EventDie:
		ev.ExitCode = raw.ContainerExitCode
	case runtime.EventHealth:
		ev.Health = raw.HealthStatus
	}
	return ev, true, nil
}
