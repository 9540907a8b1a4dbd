"""``docker-compose.yaml`` run for real, without Docker: each service of the project's image as a local process.

    python -m charter_demo.compose_runner up --generate-secrets   # what `make compose-native` runs

The compose file is read as Compose reads it (:mod:`charter_demo.compose_spec`); each container of the project's
image (one per replica) gets the image's environment and the service's, a private folder for its file system with
the named volumes, bind mounts, image files and secrets linked into it, and free loopback ports for the ports it
listens on (:mod:`charter_demo.compose_layout`). PostgreSQL, Redis and the mail catcher are played by the machine's
servers and an SMTP catcher (:mod:`charter_demo.compose_backing`). Services start in ``depends_on`` order, waiting
for ``service_completed_successfully`` (the exit status) and ``service_healthy`` (the healthcheck, run natively).

What a container has and a process here does not, and how it is stood for:

* the image's ``ENTRYPOINT`` runs as written (``deploy/docker-entrypoint.sh``), without ``dumb-init``, whose job
  (being PID 1, forwarding signals) falls to the process groups this runner starts and stops; the Airflow image's
  own ``/entrypoint``, which the project's script hands over to, is stood for by :data:`AIRFLOW_ENTRYPOINT`;
* the Python environment is the checkout's ``.venv`` (its editable install of the project stands for the wheel);
* the container's host name: ``HOSTNAME`` and Airflow's ``hostname_callable`` give each container its own name;
* its network: all processes share the loopback interface, so each port an Airflow component listens on (the
  api-server, log servers, the scheduler's health check) is moved to a free port by its Airflow option;
* the ``user:`` of the compose file: processes run as the current user;
* ``restart: always``: a process that exits is reported by :meth:`ComposeRunner.check_running`, not restarted.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from charter_demo import compose_stop
from charter_demo.compose_backing import PostgresStandIn, StandIn, free_port, stand_in_for
from charter_demo.compose_layout import Layout, Network, build_layout
from charter_demo.compose_spec import ComposeError, ComposeFile, ImageSpec, Service, load_compose, read_dockerfile

__all__ = ["AIRFLOW_LISTEN_PORTS", "ComposeRunner", "Container"]

#: Airflow options that set a port a component listens on, with the port it listens on in its container.
AIRFLOW_LISTEN_PORTS: dict[str, int] = {
    "AIRFLOW__API__PORT": 8080,
    "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": 8974,
    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": 8793,
    "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": 8794,
    "AIRFLOW__CELERY__FLOWER_PORT": 5555,
}

#: Stands for the Airflow image's ``/entrypoint``: its dispatch of the command (``bash`` and ``python`` as they are,
#: anything else an ``airflow`` sub-command). Its waits for the database and the broker are the runner's
#: ``depends_on`` waits here, and there is no container user to create.
AIRFLOW_ENTRYPOINT = """#!/usr/bin/env bash
set -euo pipefail
case "${1:-}" in
  "") exec bash ;;
  bash) shift; exec bash "$@" ;;
  python) shift; exec python "$@" ;;
  airflow) shift; exec airflow "$@" ;;
  *) exec airflow "$@" ;;
esac
"""


@dataclass
class Container:
    """One replica of a service of the project's image."""

    name: str
    service: Service
    layout: Layout
    ports: dict[int, int]  # container port -> loopback port
    env: dict[str, str] = field(default_factory=dict)
    host_env: dict[str, str] = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)
    log: Path = Path()
    process: subprocess.Popen[bytes] | None = None

    @property
    def service_name(self) -> str:
        return self.service.name

    @property
    def depends_on(self) -> list[str]:
        return list(self.service.depends_on)

    @property
    def popen(self) -> subprocess.Popen[bytes]:
        return _process(self)


def _process(container: Container) -> subprocess.Popen[bytes]:
    if container.process is None:
        raise ComposeError(f"{container.name} was not started")
    return container.process


def _bin_dir() -> Path:
    return Path(sys.executable).parent


class ComposeRunner:
    """Start the services of a compose file as local processes, then stop them and remove what they created.

    :param variables: what ``${...}`` reads (an operator's shell and ``.env``).
    :param project_dir: where relative paths start (``--project-directory``); the compose file's folder by default.
    :param overrides: environment added to every project container after the compose file's, as a
        ``docker-compose.override.yaml`` would (tuning for a test, never a setting the deployment needs).
    """

    def __init__(
        self,
        compose_file: Path,
        state_dir: Path,
        variables: Mapping[str, str],
        *,
        pg_admin: str = "postgresql://postgres@127.0.0.1:5432",
        redis_url: str = "redis://127.0.0.1:6379",
        profiles: Sequence[str] = (),
        overrides: Mapping[str, str] | None = None,
        project_dir: Path | None = None,
    ) -> None:
        self.compose: ComposeFile = load_compose(compose_file, variables, project_dir)
        self.state_dir = state_dir.resolve()
        self.project = f"compose_{uuid.uuid4().hex[:8]}"
        self.profiles, self.overrides = set(profiles), dict(overrides or {})
        self.pg_admin, self.redis_url = pg_admin, redis_url
        self.image: ImageSpec | None = None
        self.stand_ins: dict[str, StandIn] = {}
        self.containers: dict[str, Container] = {}
        self.order: list[str] = []
        self.network = Network()

    # ------------------------------------------------------------------ planning
    def volume(self, name: str) -> Path:
        """The folder standing for named volume ``name``."""
        return self.state_dir / "volumes" / name

    def selected(self, services: Sequence[str] | None = None) -> list[str]:
        """``services`` (all of the active profiles when None) and what they depend on, in start order."""
        everything = self.compose.services
        wanted = (
            list(services)
            if services is not None
            else [name for name, s in everything.items() if not s.profiles or self.profiles & set(s.profiles)]
        )
        order: list[str] = []

        def visit(name: str, path: tuple[str, ...]) -> None:
            if name in path:
                raise ComposeError(f"depends_on cycle: {' -> '.join((*path, name))}")
            if name not in everything:
                raise ComposeError(f"unknown service {name}")
            for dependency in everything[name].depends_on:
                visit(dependency, (*path, name))
            if name not in order:
                order.append(name)

        for name in wanted:
            visit(name, ())
        return order

    def plan(self, services: Sequence[str] | None) -> None:
        """Each container's environment, command line and file system, and the stand-ins; nothing is started."""
        self.order = self.selected(services)
        (self.state_dir / "image").mkdir(parents=True, exist_ok=True)
        entrypoint = self.state_dir / "image" / "entrypoint"
        entrypoint.write_text(AIRFLOW_ENTRYPOINT)
        entrypoint.chmod(0o755)
        for volume in self.compose.volumes:
            self.volume(volume).mkdir(parents=True, exist_ok=True)
        for name in self.order:
            service = self.compose.services[name]
            if not service.built:
                stand_in = stand_in_for(
                    service.image,
                    prefix=self.project,
                    pg_admin=self.pg_admin,
                    redis_url=self.redis_url,
                    state_dir=self.state_dir,
                )
                self.stand_ins[name] = stand_in
                for port in {stand_in.port_in_container, *service.expose, *(p.container_port for p in service.ports)}:
                    self.network.addresses[(name, port)] = stand_in.address(port)
                self.network.hooks[name] = stand_in.hook
                continue
            for replica in range(1, service.replicas + 1):
                self._plan_container(service, replica)
        for name, stand_in in self.stand_ins.items():
            if isinstance(stand_in, PostgresStandIn):
                stand_in.plan(self.network.urls_to(name, self._all_env_values()))
        for container in self.containers.values():
            self._finish_container(container)

    def _all_env_values(self) -> list[str]:
        return [value for c in self.containers.values() for value in c.env.values()]

    def _image(self) -> ImageSpec:
        if self.image is None:
            self.image = read_dockerfile(self.compose.project_dir / "Dockerfile", self.compose.project_dir)
        return self.image

    def _plan_container(self, service: Service, replica: int) -> None:
        image = self._image()
        name = f"{self.project}-{service.name}-{replica}"
        root = self.state_dir / "containers" / name
        layout = build_layout(service, self.compose, image, root, self.state_dir / "volumes", {})
        ports = {port: free_port() for port in AIRFLOW_LISTEN_PORTS.values()}
        for published in service.ports:
            if published.container_port not in ports:
                raise ComposeError(f"{service.name} publishes port {published.container_port}, which cannot be moved")
        container = Container(name=name, service=service, layout=layout, ports=ports)
        container.env = {**image.env, **service.environment}
        # What a container has of its own, as values of this machine (not rewritten): see the module's docstring.
        container.host_env = {
            "PATH": f"{_bin_dir()}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOSTNAME": name,
            "AIRFLOW_LOCAL_WORKER_NAME": name,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "charter_demo.local_airflow.worker_hostname",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__CELERY__FLOWER_HOST": "127.0.0.1",
            "TMPDIR": str(layout.host_path("/tmp")),  # noqa: S108 - the container's own /tmp, in its private folder
            "PYTHONDONTWRITEBYTECODE": "1",
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.project,
            **{option: str(ports[port]) for option, port in AIRFLOW_LISTEN_PORTS.items()},
            **self.overrides,
        }
        if replica == 1:
            for port, loopback in ports.items():
                self.network.addresses[(service.name, port)] = ("127.0.0.1", loopback)
        container.log = self.state_dir / "logs" / f"{name}.log"
        self.containers[name] = container

    def _finish_container(self, container: Container) -> None:
        """Paths and host names rewritten, once every address is known."""
        rewrite = container.layout.rewrite
        container.env = {k: rewrite(v) for k, v in self.network.rewrite_env(container.env).items()}
        container.env.update(container.host_env)
        entrypoint = container.service.entrypoint
        if entrypoint is None:
            entrypoint = list(self._image().entrypoint)
            if entrypoint and entrypoint[0].endswith("dumb-init"):
                entrypoint = entrypoint[entrypoint.index("--") + 1 :] if "--" in entrypoint else entrypoint[1:]
        command = container.service.command
        if command is None:
            command = list(self._image().cmd) if container.service.entrypoint is None else []
        container.argv = [rewrite(self.network.rewrite(word)) for word in [*entrypoint, *command]]
        if entrypoint:
            self._hand_over(container, entrypoint[0])

    def _hand_over(self, container: Container, program: str) -> None:
        """Point the hand-over to the Airflow image's ``/entrypoint`` at its stand-in.

        The project's entry point names the variable that may replace ``/entrypoint``
        (``exec "${NAME:-/entrypoint}"``): it is read from the script, so that a renamed variable is followed.
        """
        stand_in = str(self.state_dir / "image" / "entrypoint")
        if program == "/entrypoint":
            container.argv[0] = stand_in
            return
        script = container.layout.location(program)
        text = script.read_text(encoding="utf-8", errors="replace") if script.is_file() else ""
        variable = re.search(r"\$\{(\w+):-/entrypoint\}", text)
        if variable:
            container.env[variable.group(1)] = stand_in
        elif "/entrypoint" in text:
            raise ComposeError(f"{program} hands over to /entrypoint with no variable to point it elsewhere")

    # ------------------------------------------------------------------ running
    def up(self, services: Sequence[str] | None = None, *, timeout: float = 600) -> None:
        """Start ``services`` and their dependencies, each once its ``depends_on`` conditions hold."""
        self.plan(services)
        (self.state_dir / "logs").mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        try:
            for name in self.order:
                for dependency, condition in self.compose.services[name].depends_on.items():
                    self._wait(dependency, condition, deadline)
                if name in self.stand_ins:
                    self.stand_ins[name].start()
                    continue
                for container in self._containers_of(name):
                    self._start(container)
        except BaseException:
            self.down()
            raise

    def _containers_of(self, service: str) -> list[Container]:
        return [c for c in self.containers.values() if c.service.name == service]

    def _start(self, container: Container) -> None:
        container.layout.materialise()
        Path(container.env["TMPDIR"]).mkdir(parents=True, exist_ok=True)
        with container.log.open("ab") as log:
            container.process = subprocess.Popen(  # noqa: S603 - the compose file's own commands
                container.argv,
                env=container.env,
                cwd=container.layout.host_path(self.image.workdir if self.image else "/"),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _tail(self, container: Container) -> str:
        text = container.log.read_text(errors="replace") if container.log.exists() else ""
        return f"{container.name} (log {container.log}):\n{text[-3000:]}"

    def _wait(self, service: str, condition: str, deadline: float) -> None:
        """Until ``condition`` holds for ``service``: started, healthy or completed successfully."""
        if condition == "service_started":
            return
        while True:
            if service in self.stand_ins:
                if self.stand_ins[service].healthy():
                    return
            elif condition == "service_completed_successfully":
                if self._completed(service):
                    return
            elif all(self._healthy(c) for c in self._containers_of(service)):
                return
            if time.monotonic() > deadline:
                raise ComposeError(f"{service} did not reach {condition} in time")
            time.sleep(2)

    def _completed(self, service: str) -> bool:
        for container in self._containers_of(service):
            code = _process(container).poll()
            if code is None:
                return False
            if code != 0:
                raise ComposeError(f"{service} exited with status {code}: {self._tail(container)}")
        return True

    def _healthy(self, container: Container) -> bool:
        """The service's healthcheck, run natively: its ``localhost`` ports are this container's loopback ports."""
        if _process(container).poll() is not None:
            raise ComposeError(f"{container.service.name} exited: {self._tail(container)}")
        test = container.service.healthcheck
        if not test or test[0] == "NONE":
            return True
        command = [test[1]] if test[0] == "CMD-SHELL" else test[1:]
        for port, loopback in container.ports.items():
            command = [word.replace(f"localhost:{port}", f"127.0.0.1:{loopback}") for word in command]
        argv = ["bash", "-c", command[0]] if test[0] == "CMD-SHELL" else command
        argv = [container.layout.rewrite(word) for word in argv]
        done = subprocess.run(argv, env=container.env, capture_output=True, timeout=60, check=False)  # noqa: S603
        return done.returncode == 0

    def check_running(self) -> None:
        """Raise, with the log's end, if a long-running container has exited."""
        for container in self.containers.values():
            one_shot = container.service.restart == "no"
            if container.process is not None and container.process.poll() is not None and not one_shot:
                raise ComposeError(
                    f"{container.name} exited with {container.process.returncode}: {self._tail(container)}"
                )

    def run(self, service: str, argv: Sequence[str], *, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """A one-off command in a new container of ``service`` (``docker compose run --rm``), via the entry point."""
        if not self.containers:
            raise ComposeError("start the services first: a one-off container shares their volumes and network")
        self._plan_container(self.compose.services[service], 0)
        name = f"{self.project}-{service}-0"
        container = self.containers.pop(name)
        container.service = Service(**{**vars(container.service), "command": list(argv)})
        self._finish_container(container)
        container.layout.materialise()
        Path(container.env["TMPDIR"]).mkdir(parents=True, exist_ok=True)
        return subprocess.run(  # noqa: S603 - the caller's command, in the service's environment
            container.argv, env=container.env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def down(self) -> list[str]:
        """Stop every process in compose's order (:mod:`charter_demo.compose_stop`), then the stand-ins; the errors."""
        running = [c for c in reversed(list(self.containers.values())) if c.process is not None]
        errors = compose_stop.stop(running)
        for name, stand_in in reversed(list(self.stand_ins.items())):
            try:
                stand_in.stop()
            except Exception as exc:  # noqa: BLE001 - every stand-in is stopped; the errors are returned
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
        return errors

    def url(self, service: str, container_port: int) -> str:
        host, port = self.network.addresses[(service, container_port)]
        return f"http://{host}:{port}"
