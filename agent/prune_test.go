package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/poll"

	"github.com/zaki-platform/zaki-agent/internal/errdefs"
)

func f64(v float64) *float64 { return &v }

func userIDs(items []PruneItem) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, it.UserID)
	}
	sort.Strings(out)
	return out
}

// pruneEnv makes four instances on a clock: "old" created 8 days ago and
// used 6 minutes ago (just out of the hot window), "idle" used 25 hours
// ago, "doze" used 30 minutes ago and "busy" used just now.
func pruneEnv(t *testing.T, mutate ...func(*Config)) *fakeEnv {
	e := newFakeEnv(t, mutate...)
	e.ensure("old", InstanceSpec{})
	e.clock.Add(8*24*time.Hour - 25*time.Hour)
	e.ensure("idle", InstanceSpec{})
	e.clock.Add(25*time.Hour - 30*time.Minute)
	e.ensure("doze", InstanceSpec{})
	e.clock.Add(24 * time.Minute)
	_, err := e.a.Touch(context.Background(), "old")
	assert.NilError(t, err)
	e.clock.Add(6 * time.Minute)
	e.ensure("busy", InstanceSpec{})
	for _, u := range []string{"old", "idle", "doze", "busy"} {
		dir := filepath.Join(e.cfg.StateDir, "instances", u)
		assert.NilError(t, os.WriteFile(filepath.Join(dir, "memory.db"), []byte("user data of "+u), 0o600))
	}
	return e
}

func assertDataKept(t *testing.T, e *fakeEnv, users ...string) {
	t.Helper()
	for _, u := range users {
		b, err := os.ReadFile(filepath.Join(e.cfg.StateDir, "instances", u, "memory.db"))
		assert.NilError(t, err, "data of %s lost", u)
		assert.Equal(t, string(b), "user data of "+u)
	}
}

func TestPruneRules(t *testing.T) {
	ctx := context.Background()
	t.Run("defaults remove idle and old only", func(t *testing.T) {
		e := pruneEnv(t)
		res, err := e.a.Prune(ctx, PruneRequest{})
		assert.NilError(t, err)
		assert.DeepEqual(t, userIDs(res.Removed), []string{"idle", "old"})
		assert.DeepEqual(t, userIDs(res.Stopped), []string{})
		assert.DeepEqual(t, userIDs(res.Failed), []string{})
		reasons := map[string]string{}
		for _, it := range res.Removed {
			reasons[it.UserID] = it.Reason
		}
		assert.DeepEqual(t, reasons, map[string]string{"old": ReasonMaxAge, "idle": ReasonIdle})
		for _, u := range []string{"old", "idle"} {
			_, err := e.a.Get(ctx, u)
			assert.Assert(t, errors.Is(err, errdefs.ErrNotFound))
			_, ok := e.reg.Port(u)
			assert.Assert(t, ok, "port of %s released", u)
		}
		assert.Equal(t, len(e.fake.Containers()), 2)
		assertDataKept(t, e, "old", "idle", "doze", "busy")
	})
	t.Run("idle stop only", func(t *testing.T) {
		e := pruneEnv(t)
		res, err := e.a.Prune(ctx, PruneRequest{IdleStopMinutes: f64(10), IdleHours: f64(0), MaxAgeDays: f64(0)})
		assert.NilError(t, err)
		assert.DeepEqual(t, userIDs(res.Stopped), []string{"doze", "idle"})
		assert.DeepEqual(t, userIDs(res.Removed), []string{})
		e.waitState("doze", StateStopped)
		e.waitState("idle", StateStopped)
		e.waitState("busy", StateRunning)
		e.waitState("old", StateRunning)
		assert.Equal(t, len(e.fake.Containers()), 4)
	})
	t.Run("max age only", func(t *testing.T) {
		e := pruneEnv(t)
		res, err := e.a.Prune(ctx, PruneRequest{IdleHours: f64(0), MaxAgeDays: f64(7)})
		assert.NilError(t, err)
		assert.DeepEqual(t, userIDs(res.Removed), []string{"old"})
		assert.Equal(t, len(e.fake.Containers()), 3)
	})
	t.Run("old but hot is kept and marked stale then renewed when cold", func(t *testing.T) {
		e := pruneEnv(t)
		old := e.ensure("old", InstanceSpec{}) // used now: hot
		res, err := e.a.Prune(ctx, PruneRequest{DryRun: true})
		assert.NilError(t, err)
		assert.DeepEqual(t, userIDs(res.Staled), []string{"old"})
		assert.DeepEqual(t, userIDs(res.Removed), []string{"idle"})
		in, err := e.a.Get(ctx, "old")
		assert.NilError(t, err)
		assert.Assert(t, !in.Stale, "a dry run marked it")

		res, err = e.a.Prune(ctx, PruneRequest{})
		assert.NilError(t, err)
		assert.DeepEqual(t, userIDs(res.Staled), []string{"old"})
		assert.Equal(t, res.Staled[0].Reason, ReasonMaxAge)
		assert.DeepEqual(t, userIDs(res.Removed), []string{"idle"})
		in, err = e.a.Get(ctx, "old")
		assert.NilError(t, err)
		assert.Assert(t, in.Stale)
		assert.Equal(t, in.ContainerID, old.ContainerID)

		// Still hot: reused. Then cold: made anew, no longer stale.
		assert.Equal(t, e.ensure("old", InstanceSpec{}).Outcome, OutcomeReused)
		e.clock.Add(6 * time.Minute)
		re := e.ensure("old", InstanceSpec{})
		assert.Equal(t, re.Outcome, OutcomeRecreated)
		assert.Assert(t, !re.Stale)
		assert.Assert(t, re.ContainerID != old.ContainerID)
		assert.Equal(t, re.Port, old.Port)
		assertDataKept(t, e, "old")

		// A stale instance that turns idle is removed by the next pass.
		e.clock.Add(7*24*time.Hour + time.Hour)
		e.a.Touch(ctx, "old")
		res, err = e.a.Prune(ctx, PruneRequest{IdleHours: f64(0)})
		assert.NilError(t, err)
		assert.DeepEqual(t, userIDs(res.Staled), []string{"old"})
		e.clock.Add(6 * time.Minute)
		res, err = e.a.Prune(ctx, PruneRequest{IdleHours: f64(0)})
		assert.NilError(t, err)
		assert.Assert(t, containsUser(res.Removed, "old"), "removed: %v", userIDs(res.Removed))
		assertDataKept(t, e, "old")
	})
	t.Run("fractions", func(t *testing.T) {
		e := pruneEnv(t)
		res, err := e.a.Prune(ctx, PruneRequest{IdleHours: f64(0.25), MaxAgeDays: f64(0)})
		assert.NilError(t, err)
		assert.DeepEqual(t, userIDs(res.Removed), []string{"doze", "idle"})
	})
	t.Run("dry run changes nothing", func(t *testing.T) {
		e := pruneEnv(t)
		e.fake.ResetCalls()
		res, err := e.a.Prune(ctx, PruneRequest{DryRun: true, IdleStopMinutes: f64(10)})
		assert.NilError(t, err)
		assert.Assert(t, res.DryRun)
		assert.DeepEqual(t, userIDs(res.Removed), []string{"idle", "old"})
		assert.DeepEqual(t, userIDs(res.Stopped), []string{"doze"})
		assert.DeepEqual(t, e.fake.CallCounts(), map[string]int{}, cmpNonZero)
		assert.Equal(t, e.reg.Len(), 4)
	})
	t.Run("negative threshold refused", func(t *testing.T) {
		e := pruneEnv(t)
		_, err := e.a.Prune(ctx, PruneRequest{IdleHours: f64(-1)})
		assert.Assert(t, errors.Is(err, errdefs.ErrInvalidArgument))
	})
	t.Run("failed removal keeps the entry and is retried", func(t *testing.T) {
		e := pruneEnv(t)
		e.fake.FailNext("Remove", 1, errdefs.Errorf(errdefs.ErrUnavailable, "engine hiccup"))
		res, err := e.a.Prune(ctx, PruneRequest{})
		assert.NilError(t, err)
		assert.DeepEqual(t, userIDs(res.Failed), []string{"idle", "old"})
		assert.Equal(t, e.reg.Len(), 4)
		res, err = e.a.Prune(ctx, PruneRequest{})
		assert.NilError(t, err)
		assert.DeepEqual(t, userIDs(res.Removed), []string{"idle", "old"})
		assert.Equal(t, e.reg.Len(), 2)
	})
	t.Run("one removal call for many", func(t *testing.T) {
		e := pruneEnv(t)
		e.fake.ResetCalls()
		_, err := e.a.Prune(ctx, PruneRequest{IdleHours: f64(0.1)})
		assert.NilError(t, err)
		assert.Equal(t, e.fake.Calls("Remove"), 1)
	})
	t.Run("pruned user comes back with data and port", func(t *testing.T) {
		e := pruneEnv(t)
		port, _ := e.reg.Port("idle")
		_, err := e.a.Prune(ctx, PruneRequest{})
		assert.NilError(t, err)
		in := e.ensure("idle", InstanceSpec{})
		assert.Equal(t, in.Outcome, OutcomeCreated)
		assert.Equal(t, in.Port, port)
		assertDataKept(t, e, "idle")
	})
	t.Run("missing entries are pruned too", func(t *testing.T) {
		e := pruneEnv(t)
		c, _ := e.fake.Container("zaki-user-idle")
		assert.NilError(t, e.fake.RemoveBehindBack(c.ID))
		e.waitState("idle", StateMissing)
		poll.WaitOn(t, func(poll.LogT) poll.Result {
			if rec, _ := e.reg.Get("idle"); rec.State != StateMissing {
				return poll.Continue("recorded state %q", rec.State)
			}
			return poll.Success()
		})
		res, err := e.a.Prune(ctx, PruneRequest{})
		assert.NilError(t, err)
		assert.DeepEqual(t, userIDs(res.Removed), []string{"idle", "old"})
		assert.Equal(t, e.reg.Len(), 2)
	})
}

func containsUser(items []PruneItem, user string) bool {
	for _, it := range items {
		if it.UserID == user {
			return true
		}
	}
	return false
}

// TestPruneAgeOfMinutes: an instance minutes old is listed with its age,
// not rounded to 0 days.
func TestPruneAgeOfMinutes(t *testing.T) {
	e := newFakeEnv(t)
	e.ensure("young", InstanceSpec{})
	e.clock.Add(3 * time.Minute)
	res, err := e.a.Prune(context.Background(), PruneRequest{DryRun: true, IdleStopMinutes: f64(1), IdleHours: f64(0), MaxAgeDays: f64(0)})
	assert.NilError(t, err)
	assert.Equal(t, len(res.Stopped), 1)
	assert.Equal(t, res.Stopped[0].AgeDays, 0.00208) // 3 minutes, 3 significant digits
	assert.Equal(t, res.Stopped[0].IdleMinutes, 3.0)
	assert.Equal(t, roundSig(123.456, 3), 123.0)
	assert.Equal(t, roundSig(6.2349, 3), 6.23)
}
