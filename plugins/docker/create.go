package docker

import (
	"context"
	"fmt"

	"github.com/zaki-platform/zaki-agent/plugins/internal/cliargs"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// createArgs is Dialect.CreateArgs: the image's HEALTHCHECK is looked up
// for the healthcheck flags (healthcheck.go).
func (d *Docker) createArgs(ctx context.Context, spec runtime.ContainerSpec) ([]string, error) {
	health, err := d.healthArgs(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("create %q: %w", spec.Name, err)
	}
	return createArgs(spec, health), nil
}

// createArgs is the argv of `docker create` up to (not including) the env
// file and the image: the options podman's client reads alike too
// (cliargs.CreateFlags), docker's healthcheck flags among them, then the
// log bound on the json-file driver (rotated files that `docker logs`
// reads). Every caller value is in --flag=value form.
func createArgs(spec runtime.ContainerSpec, health []string) []string {
	a := append([]string{"create"}, cliargs.CreateFlags(spec, health)...)
	return append(a, cliargs.LogFlags(spec.Log, "json-file", true)...)
}
