// Package swarm is the Docker Swarm runtime (issue 19, docs/swarm.md): a
// runtime.Runtime and runtime.Cluster on the Engine API of a swarm manager
// (package engineapi: JSON over the manager's Unix socket, API 1.41), served
// by zaki-runtime-swarm.
//
// One replicated service stands for each container, named as the
// container (or, for a name swarmkit refuses, a name made from it with a
// hash suffix; the name asked for is in the LabelName label, read back as
// Container.Name). The service's ID is the Container.ID: a task's
// container ID changes at every start. Create makes the service at 0
// replicas with the whole spec; Start scales it to 1 and waits for its
// task's container to run; Stop scales it to 0 and waits for the task to
// stop; Restart bumps ForceUpdate; Remove deletes the service. Placement
// constrains a service to node.labels.zaki.node==true and, for
// Placement.Node, node.labels.zaki.node.name==<node>. Inspect and List read
// the services, their newest tasks and the nodes; Container.Node is the
// task's node (its zaki.node.name label) and NodeAddr the node's address,
// where the service's host-mode ports answer.
//
// What a swarm cannot do, and what the plugin does instead:
//
//   - Info.Unenforced lists NoNewPrivileges, memory swap, CPU shares and a
//     port's host address (a service publishes host-mode ports on every
//     address of its node). The plugin drops them; the agent refuses them
//     unless node provisioning enforces them (docs/swarm-nodes.md).
//   - A seccomp or AppArmor profile, an OCI runtime, and tmpfs options
//     other than size and mode are refused (ErrInvalidArgument).
//   - Networks: none. EnsureNetwork and RemoveNetwork succeed and do
//     nothing; tasks run on their node's default bridge, which the node's
//     engine (--icc=false) and iptables rules keep apart.
//   - Pause and Resume are ErrConflict: a service has no pause.
//   - Exec is ErrConflict: the task's node engine is not reachable through
//     the manager.
//   - Stop's and Restart's timeout is not used: the swarm stops a task with
//     its service's grace period (ContainerSpec.StopTimeout).
//   - Stopping (scaling to 0) removes the tasks: a stopped container has no
//     logs and reads back exit code 0; when it stopped is kept in a label.
//   - Events are synthesised: the stream compares List at each of the
//     manager's service events and every Config.Poll, and emits create,
//     start, die and destroy. No health or image events.
//   - Images: ImageID and PullImage use the manager's own image store;
//     each node has its own, and putting the image on every node (with its
//     engine's DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1) is provisioning.
//   - Health: a task whose image or spec has a health check is "starting"
//     until it passes; Container.Health says so, and "healthy" once the
//     task is running with the spec's health check.
//
// PrepareDir runs a one-shot task on the node (see its doc). Env values
// are secret: the Engine API client redacts them from every error, and
// the plugin logs no spec; they are visible, as in every swarm, to whoever
// can inspect the service on a manager.
package swarm
