package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// Stop stops userID's instance and keeps its container.
func (a *Agent) Stop(ctx context.Context, userID string) (Instance, error) {
	if err := validateUserID(userID); err != nil {
		return Instance{}, err
	}
	unlock := a.locks.lock(userID)
	defer unlock()
	rec, ok := a.reg.Get(userID)
	if !ok {
		return Instance{}, notFound(userID)
	}
	if err := a.confirmUser(ctx, userID); err != nil {
		return Instance{}, err
	}
	ls := a.liveOf(userID)
	if !ls.exists() {
		return Instance{}, fmt.Errorf("stop instance of user %q: %w", userID, runtime.Errorf(runtime.ErrNotFound, "its container is missing"))
	}
	release, err := a.acquire(ctx)
	if err != nil {
		return Instance{}, err
	}
	err = a.rt.Stop(ctx, []string{ls.ID}, seconds(a.conf().Instance.StopTimeoutSeconds))
	release()
	if err != nil {
		// A stop that failed changed nothing, as far as the caller knows:
		// if the engine carried it out all the same (the plugin died, not
		// the request), an outage recovery starts the instance again.
		return Instance{}, fmt.Errorf("stop instance of user %q: %w", userID, err)
	}
	a.outage.stoppedByAgent(ls.ID, a.now())
	a.markState(userID, ls.ID, runtime.StateExited, runtime.EventDie)
	a.publish(Event{Type: EventStopped, UserID: userID, ContainerID: ls.ID})
	return a.instance(rec), nil
}

// Restart restarts userID's instance and waits until it is ready again.
func (a *Agent) Restart(ctx context.Context, userID string) (Instance, error) {
	if err := validateUserID(userID); err != nil {
		return Instance{}, err
	}
	unlock := a.locks.lock(userID)
	defer unlock()
	rec, ok := a.reg.Get(userID)
	if !ok {
		return Instance{}, notFound(userID)
	}
	if err := a.confirmUser(ctx, userID); err != nil {
		return Instance{}, err
	}
	ls := a.liveOf(userID)
	if !ls.exists() {
		return Instance{}, fmt.Errorf("restart instance of user %q: %w", userID, runtime.Errorf(runtime.ErrNotFound, "its container is missing; ensure it instead"))
	}
	if err := a.checkQuota(ctx, userID); err != nil {
		return Instance{}, err
	}
	if a.cluster != nil {
		if err := a.checkNode(ctx, userID, ls); err != nil {
			return Instance{}, err
		}
	}
	release, err := a.acquire(ctx)
	if err != nil {
		return Instance{}, err
	}
	// A restart always stops and starts the container, and leaves the
	// state as it was: its echo is awaited from before the call.
	cancelEcho := a.expectEcho(ls.ID, runtime.EventRestart)
	err = a.rt.Restart(ctx, ls.ID, seconds(a.conf().Instance.StopTimeoutSeconds))
	release()
	if err != nil {
		cancelEcho()
	}
	err = a.nodeUnavailable(ctx, userID, err)
	if err != nil {
		return Instance{}, fmt.Errorf("restart instance of user %q: %w", userID, err)
	}
	a.markState(userID, ls.ID, runtime.StateRunning, "")
	a.reg.Touch(userID, a.now().UnixMilli())
	if err := a.waitReady(ctx, rec); err != nil {
		return Instance{}, fmt.Errorf("restart instance of user %q: %w", userID, err)
	}
	a.publish(Event{Type: EventRestarted, UserID: userID, ContainerID: ls.ID})
	return a.instance(a.mustGet(userID, rec)), nil
}

// Remove removes userID's container and registry entry. The user's data
// dir is deleted only when purge is set; the user's port stays theirs.
// With purge, a user without an instance but with data is not an error.
//
// With purge the data dir goes before the entry, so that on a full disk
// the space is freed before the registry is written (which needs some).
// A crash (or a failed write) between the two leaves the entry without
// data: the instance shows as missing, a retried purge finishes the job,
// and an ensure instead makes the instance again on an empty data dir
// (the files of its spec written anew), its port kept. Purging is what
// the caller asked, so nothing is lost that was to be kept.
func (a *Agent) Remove(ctx context.Context, userID string, purge bool) error {
	if err := validateUserID(userID); err != nil {
		return err
	}
	if purge && a.cluster != nil {
		where := "on its node"
		if node, ok := a.reg.Node(userID); ok {
			where = fmt.Sprintf("on node %q", node)
		}
		return invalid("purge of user %q: its data lives %s, where the agent cannot delete it yet (a cluster runtime has no call for it): remove without purge, then delete %s there",
			userID, where, filepath.Join(a.dataDir, userID))
	}
	unlock := a.locks.lock(userID)
	defer unlock()
	if err := a.confirmUser(ctx, userID); err != nil {
		return err
	}
	rec, hasRec := a.reg.Get(userID)
	ls := a.liveOf(userID)
	if !hasRec && !ls.exists() {
		if purge && a.hasDataDir(userID) {
			return a.purgeDataDir(userID)
		}
		return notFound(userID)
	}
	release, err := a.acquire(ctx)
	if err != nil {
		return err
	}
	err = a.rt.Remove(ctx, []string{containerName(userID)}, runtime.RemoveOptions{Force: true})
	release()
	if err != nil {
		return fmt.Errorf("remove instance of user %q: %w", userID, err)
	}
	a.dropLive(userID, "")
	if purge {
		if err := a.purgeDataDir(userID); err != nil {
			return err
		}
	}
	if hasRec {
		if err := a.reg.Delete(userID); err != nil {
			what := "container removed"
			if purge {
				what = "container and data removed"
			}
			return fmt.Errorf("remove instance of user %q: %s, entry kept: %w", userID, what, err)
		}
	}
	id := rec.ContainerID
	if ls.exists() {
		id = ls.ID
	}
	msg := ""
	if purge {
		msg = "purged"
	}
	a.publish(Event{Type: EventRemoved, UserID: userID, ContainerID: id, Message: msg})
	return nil
}

func (a *Agent) hasDataDir(userID string) bool {
	_, err := os.Lstat(filepath.Join(a.dataDir, userID))
	return !errors.Is(err, fs.ErrNotExist)
}

// Logs streams userID's container output (with a cluster runtime,
// ErrNodeUnavailable while its node is not ready).
func (a *Agent) Logs(ctx context.Context, userID string, opts runtime.LogOptions) (io.ReadCloser, error) {
	if err := validateUserID(userID); err != nil {
		return nil, err
	}
	if _, ok := a.reg.Get(userID); !ok {
		return nil, notFound(userID)
	}
	if err := a.confirmUser(ctx, userID); err != nil {
		return nil, err
	}
	ls := a.liveOf(userID)
	if a.cluster != nil {
		if err := a.checkNode(ctx, userID, ls); err != nil {
			return nil, err
		}
	}
	if !ls.exists() {
		return nil, fmt.Errorf("logs of user %q: %w", userID, runtime.Errorf(runtime.ErrNotFound, "its container is missing"))
	}
	rc, err := a.rt.Logs(ctx, ls.ID, opts)
	err = a.nodeUnavailable(ctx, userID, err)
	if err != nil {
		return nil, fmt.Errorf("logs of user %q: %w", userID, err)
	}
	return rc, nil
}
