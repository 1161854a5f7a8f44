package agent

import (
	"testing"

	"gotest.tools/v3/assert"
)

func TestReloadKeepsRestartOnlySettings(t *testing.T) {
	e := newFakeEnv(t)
	next := e.a.Config()
	next.MaxEngineOps++
	next.Instance.LabelPrefix = "other"
	next.Hot.WindowMinutes = 7
	next.Prune.IdleHours = 3

	needRestart, applied, err := e.a.Reload(next)
	assert.NilError(t, err)
	assert.DeepEqual(t, needRestart, []string{"instance.labelPrefix", "maxEngineOps"})
	assert.DeepEqual(t, applied, []string{"prune.idleHours", "hot.windowMinutes"})
	got := e.a.Config()
	assert.Equal(t, got.MaxEngineOps, e.cfg.MaxEngineOps)
	assert.Equal(t, got.Instance.LabelPrefix, e.cfg.Instance.LabelPrefix)
	assert.Equal(t, got.Hot.WindowMinutes, 7.0)

	next.Prune.IntervalMinutes = 0
	_, _, err = e.a.Reload(next)
	assert.ErrorContains(t, err, "prune.intervalMinutes")
	assert.Equal(t, e.a.Config().Prune.IdleHours, 3.0, "a refused reload changes nothing")
}
