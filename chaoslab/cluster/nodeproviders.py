"""How node faults reach a real node's machine: the node providers.

Why it exists: the Kubernetes API can cordon and drain a node but cannot crash one.
A crash (`node-crash`), a hang (`node-hang`) and bringing a node back (`node-restore`)
need the machine itself. For kind and minikube's docker driver each node is a Docker
container, so `docker kill` is a power cut, `docker pause` freezes every process (the
kubelet stops heartbeating: a hang), and `docker unpause` / `docker start` bring it
back. Anywhere else the user gives shell commands with a `{node}` placeholder (a cloud
CLI that stops an instance, `virsh destroy`, a KWOK stage change...).

No `kubernetes` import here: providers only run processes.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping
from typing import Literal, Protocol

from chaoslab.errors import ClusterError, UsageError
from chaoslab.spec import NodeProviderSpec

# A docker CLI call answers in well under a second; `docker start` of a kind node can
# take a few seconds while its systemd boots, so bound each call generously.
DOCKER_TIMEOUT_SECONDS = 60.0
# Default bound on a user's shell command (a cloud CLI may take a minute to stop a VM).
COMMAND_TIMEOUT_SECONDS = 120.0

NodeState = Literal["running", "paused", "stopped", "unknown"]


class NodeProvider(Protocol):
    """Crash, hang and restore one node's machine, by Kubernetes node name."""

    name: str

    def crash(self, node: str) -> None: ...

    def hang(self, node: str) -> None: ...

    def restore(self, node: str) -> None:
        """Undo a crash or a hang (and do nothing to a node that is running)."""
        ...

    def state(self, node: str) -> NodeState:
        """The machine's state as far as the provider can tell (`unknown` if it cannot)."""
        ...

    def describe(self, node: str) -> str:
        """What the provider would act on for `node`, for --dry-run (changes nothing)."""
        ...


class NoNodeProvider:
    """The default: node faults that need the machine are refused with the fix."""

    name = "none"

    def _refuse(self, action: str, node: str) -> UsageError:
        return UsageError(
            f"{action} of node {node!r} needs a node provider: set "
            "cluster.kubernetes.nodeProvider.type to docker (kind, or minikube with "
            "--driver=docker) or to command with crash/hang/restore shell commands"
        )

    def crash(self, node: str) -> None:
        raise self._refuse("node-crash", node)

    def hang(self, node: str) -> None:
        raise self._refuse("node-hang", node)

    def restore(self, node: str) -> None:
        raise self._refuse("node-restore", node)

    def state(self, node: str) -> NodeState:
        return "unknown"

    def describe(self, node: str) -> str:
        return "no node provider (node-crash, node-hang and node-restore are refused)"


class DockerNodeProvider:
    """Nodes that are Docker containers (kind, minikube --driver=docker).

    The container is named like the node by default (both tools do so); `container` is a
    template with `{node}` for other layouts. `docker_host` selects the daemon (else
    $DOCKER_HOST, else the default socket).
    """

    name = "docker"

    def __init__(
        self,
        *,
        container: str = "{node}",
        docker: str = "docker",
        docker_host: str | None = None,
        environ: Mapping[str, str] | None = None,
        timeout: float = DOCKER_TIMEOUT_SECONDS,
    ) -> None:
        self._template = container
        self._docker = docker
        env = dict(os.environ if environ is None else environ)
        if docker_host:
            env["DOCKER_HOST"] = docker_host
        self._env = env
        self._timeout = timeout

    def container(self, node: str) -> str:
        return self._template.replace("{node}", node)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [self._docker, *args]
        try:
            return subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=self._timeout,
                env=self._env,
                check=False,
            )
        except FileNotFoundError as exc:
            raise ClusterError(
                f"node provider docker: the `{self._docker}` command was not found; install "
                "Docker (Debian: apt-get install docker.io) or use nodeProvider type command"
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise ClusterError(f"node provider docker: `{shlex.join(command)}` did not finish within {self._timeout:g}s") from exc

    def _act(self, verb: str, node: str) -> None:
        container = self.container(node)
        result = self._run(verb, container)
        if result.returncode != 0:
            raise ClusterError(
                f"node provider docker: `docker {verb} {container}` for node {node!r} failed: "
                f"{result.stderr.strip() or result.stdout.strip() or f'exit {result.returncode}'}"
            )

    def crash(self, node: str) -> None:
        self._act("kill", node)

    def hang(self, node: str) -> None:
        self._act("pause", node)

    def restore(self, node: str) -> None:
        state = self.state(node)
        if state == "paused":
            self._act("unpause", node)
        elif state == "stopped":
            self._act("start", node)
        elif state == "unknown":
            raise ClusterError(f"node provider docker: cannot tell the state of container {self.container(node)!r}")

    def state(self, node: str) -> NodeState:
        container = self.container(node)
        result = self._run("inspect", "--format", "{{.State.Status}}", container)
        if result.returncode != 0:
            raise ClusterError(
                f"node provider docker: no container {container!r} for node {node!r} "
                f"({result.stderr.strip() or 'docker inspect failed'}); nodes of kind and "
                "minikube --driver=docker are containers named like the node, set "
                "nodeProvider.container (e.g. '{node}') if yours are named otherwise"
            )
        status = result.stdout.strip()
        if status == "running":
            return "running"
        if status == "paused":
            return "paused"
        if status in ("exited", "created", "dead"):
            return "stopped"
        return "unknown"  # restarting, removing: transient

    def describe(self, node: str) -> str:
        return f"docker container {self.container(node)!r} (kill / pause / unpause, start)"


class CommandNodeProvider:
    """User shell commands with `{node}` (shell-quoted) for each node fault."""

    name = "command"

    def __init__(
        self,
        *,
        crash: str | None,
        hang: str | None,
        restore: str | None,
        status: str | None = None,
        timeout: float = COMMAND_TIMEOUT_SECONDS,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._commands = {"crash": crash, "hang": hang, "restore": restore, "status": status}
        self._timeout = timeout
        self._env = dict(os.environ if environ is None else environ)

    def command(self, action: str, node: str) -> str | None:
        template = self._commands.get(action)
        return None if template is None else template.replace("{node}", shlex.quote(node))

    def _run(self, action: str, node: str) -> subprocess.CompletedProcess[str]:
        command = self.command(action, node)
        if command is None:
            raise UsageError(
                f"node provider command has no {action} command: set "
                f"cluster.kubernetes.nodeProvider.{action} (a shell command; {{node}} is the node name)"
            )
        try:
            # shell=True on purpose: these are the user's own shell commands.
            result = subprocess.run(
                command, shell=True, capture_output=True, text=True, timeout=self._timeout, env=self._env, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise ClusterError(f"node provider command: `{command}` did not finish within {self._timeout:g}s") from exc
        if result.returncode != 0 and action != "status":
            raise ClusterError(
                f"node provider command: {action} of node {node!r} failed (exit {result.returncode}): "
                f"`{command}`: {result.stderr.strip() or result.stdout.strip()}"
            )
        return result

    def crash(self, node: str) -> None:
        self._run("crash", node)

    def hang(self, node: str) -> None:
        self._run("hang", node)

    def restore(self, node: str) -> None:
        self._run("restore", node)

    def state(self, node: str) -> NodeState:
        """With a status command: its first word if it is a known state, else unknown."""
        if self._commands["status"] is None:
            return "unknown"
        result = self._run("status", node)
        word = (result.stdout.split() or ["unknown"])[0].lower()
        return word if word in ("running", "paused", "stopped") else "unknown"  # type: ignore[return-value]

    def describe(self, node: str) -> str:
        shown = ", ".join(
            f"{action}: {self.command(action, node)}"
            for action in ("crash", "hang", "restore")
            if self._commands[action] is not None
        )
        return f"shell commands ({shown or 'none set'})"


def provider_from_spec(spec: NodeProviderSpec, *, environ: Mapping[str, str] | None = None) -> NodeProvider:
    if spec.type == "docker":
        return DockerNodeProvider(container=spec.container, docker_host=spec.docker_host, environ=environ)
    if spec.type == "command":
        return CommandNodeProvider(
            crash=spec.crash,
            hang=spec.hang,
            restore=spec.restore,
            status=spec.status,
            timeout=spec.timeout,
            environ=environ,
        )
    return NoNodeProvider()
