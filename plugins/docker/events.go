package docker

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// The event attributes docker adds beside the container's labels.
var eventAttributes = map[string]bool{"name": true, "image": true, "exitCode": true, "signal": true, "execID": true}

var knownActions = map[runtime.EventAction]bool{
	runtime.EventCreate: true, runtime.EventStart: true, runtime.EventDie: true, runtime.EventStop: true,
	runtime.EventKill: true, runtime.EventOOM: true, runtime.EventDestroy: true, runtime.EventRestart: true,
	runtime.EventHealth: true, runtime.EventPause: true, runtime.EventUnpause: true,
}

// parseEvent reads one line of `docker events --format '{{json .}}'`; ok is
// false for events the runtime does not follow. A label named like one of
// docker's own attributes (name, image, exitCode, signal, execID) cannot
// be told apart from it and is not reported.
func parseEvent(line []byte) (ev runtime.Event, ok bool, err error) {
	var raw struct {
		Type   string
		Action string
		Actor  struct {
			ID         string
			Attributes map[string]string
		}
		TimeNano int64 `json:"timeNano"`
	}
	if err := json.Unmarshal(line, &raw); err != nil {
		return ev, false, fmt.Errorf("parse %q: %w", line, err)
	}
	if raw.Type == "image" {
		return parseImageEvent(raw.Action, raw.Actor.ID, raw.Actor.Attributes["name"], raw.TimeNano)
	}
	if raw.Type != "container" {
		return ev, false, nil
	}
	action, detail, _ := strings.Cut(raw.Action, ":")
	ev.Action = runtime.EventAction(action)
	if !knownActions[ev.Action] {
		return ev, false, nil
	}
	attrs := raw.Actor.Attributes
	ev.ID = raw.Actor.ID
	ev.Name = attrs["name"]
	ev.Time = time.Unix(0, raw.TimeNano)
	for k, v := range attrs {
		if !eventAttributes[k] {
			if ev.Labels == nil {
				ev.Labels = map[string]string{}
			}
			ev.Labels[k] = v
		}
	}
	switch ev.Action {
	case runtime.EventDie:
		ev.ExitCode, _ = strconv.Atoi(attrs["exitCode"])
	case runtime.EventHealth:
		ev.Health = strings.TrimSpace(detail)
	}
	return ev, true, nil
}

var imageActions = map[runtime.EventAction]bool{
	runtime.EventImageTag: true, runtime.EventImageUntag: true, runtime.EventImageDelete: true,
	runtime.EventImagePull: true, runtime.EventImageLoad: true, runtime.EventImageImport: true,
}

// parseImageEvent reads an image event: docker names the image by its ID
// (by the reference, for pull) and the tag concerned in "name".
func parseImageEvent(action, id, name string, timeNano int64) (runtime.Event, bool, error) {
	a := runtime.EventAction(action)
	if !imageActions[a] {
		return runtime.Event{}, false, nil
	}
	return runtime.Event{Action: a, Image: true, ID: id, Name: name, Time: time.Unix(0, timeNano)}, true, nil
}
