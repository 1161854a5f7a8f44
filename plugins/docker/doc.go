// Package docker is the docker-CLI runtime: a runtime.Runtime that drives a
// Docker engine through the `docker` command-line client. It is the CLI
// engine of package plugins/internal/clirt in docker's dialect (docker.go):
// what is docker's own here is its error words (classify.go), its
// healthcheck flags and the cache of images' HEALTHCHECKs they need
// (healthcheck.go, healthcache.go), and its events (events.go). The plugin
// binary (cmd/zaki-runtime-docker) serves it over go-plugin.
//
// What it promises beyond the runtime contract:
//
//   - only machine-readable output is parsed (`--format '{{json .}}'`);
//   - every caller-supplied value before the image is passed as
//     `--flag=value`, so nothing can be read as another option, and the
//     image (validated to start with a letter or digit) ends the options:
//     the command after it is never parsed by the client;
//   - environment values never reach argv nor disk: they go through an
//     --env-file that is an in-memory file (memfd) the client inherits as
//     /dev/fd/3 (package envfile): it ends with the call, and with the
//     process should the plugin be killed; a KEY=value line longer than
//     the client's reader takes (runtime.MaxEnvLine) is
//     ErrInvalidArgument;
//   - bad input is refused with runtime.ErrInvalidArgument before any
//     docker command runs;
//   - docker's stderr is classified into the runtime's error classes in
//     one place (classify.go);
//   - Stop and Remove take many containers in one call and report each
//     failure by the reference given; List is one `docker ps` and one
//     `docker inspect` of every match.
//
// Docker's reading of some ContainerSpec fields:
//
//   - Security.SeccompProfile is the path of a JSON profile on this host:
//     the client reads the file and sends its content, so it reads back
//     as that content, compacted;
//   - Create never pulls (--pull never): a missing image is ErrNotFound;
//   - Log is the json-file driver with max-size (a byte count) and
//     max-file: rotated files that `docker logs` reads across; a zero Log
//     leaves the daemon's default driver;
//   - the docker client's --health-cmd only knows the shell form (it
//     stores ["CMD-SHELL", cmd]); healthcheck.go says how an exec-form
//     Healthcheck is expressed, and when the image then needs /bin/sh;
//   - EnsureNetwork is one `docker network create`, its "already exists"
//     taken as success: an existing network is kept whatever its options.
package docker
