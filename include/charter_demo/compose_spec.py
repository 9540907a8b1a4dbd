"""``docker-compose.yaml`` and the ``Dockerfile``, read the way Docker Compose and Docker read them.

Only what running the services natively needs (:mod:`charter_demo.compose_runner`): the Compose
specification's interpolation (``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?message}``,
``${VAR:+alternative}``, ``$$``), ``x-`` anchors and ``<<`` merge keys (PyYAML's safe loader resolves them as
Compose does), ``environment`` as a list or a map, ``env_file``, ``command`` and ``entrypoint`` as a string or a
list, ``volumes``, ``secrets`` and ``ports`` in their short and long syntaxes, ``depends_on`` as a list or with
conditions, ``profiles``, ``deploy.replicas`` and ``healthcheck``. Of the Dockerfile, the final stage's ``ENV``,
``WORKDIR``, ``ENTRYPOINT``, ``CMD``, the checkout files its ``COPY`` lines put in the image and the folders its
``RUN mkdir -p`` lines create. Nested defaults (``${A:-${B}}``) are not supported: the compose file has none.

No Docker library is used: docker-compose's own Python package is unmaintained (Compose v2 is written in Go)
and none of the maintained Python packages reads a compose file without a Docker daemon.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "BASE_IMAGE_ENV",
    "ComposeError",
    "ComposeFile",
    "ImageSpec",
    "Mount",
    "Port",
    "Service",
    "interpolate",
    "load_compose",
    "read_dockerfile",
]

_VAR = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)

#: What the ``apache/airflow`` base image sets and the Dockerfile does not repeat (its ``AIRFLOW_HOME``, and the
#: home folder of its ``airflow`` user): a native run has no base image to read them from.
BASE_IMAGE_ENV: dict[str, str] = {
    "AIRFLOW_HOME": "/opt/airflow",
    "AIRFLOW_USER_HOME_DIR": "/home/airflow",
    "HOME": "/home/airflow",
}


class ComposeError(ValueError):
    """The compose file or the Dockerfile asks for something this reader cannot honour, or a variable is missing."""


def _substitute(match: re.Match[str], variables: Mapping[str, str]) -> str:
    if match.group("escaped"):
        return "$"
    name = match.group("name") or match.group("bare")
    op, arg = match.group("op"), match.group("arg") or ""
    current = variables.get(name)
    is_set, non_empty = current is not None, bool(current)
    if op in (":-", "-"):
        return str(current) if (non_empty if op == ":-" else is_set) else arg
    if op in (":?", "?"):
        if not (non_empty if op == ":?" else is_set):
            raise ComposeError(f"required variable {name} is missing a value: {arg}")
        return str(current)
    if op in (":+", "+"):
        return arg if (non_empty if op == ":+" else is_set) else ""
    return current or ""


def interpolate(node: Any, variables: Mapping[str, str]) -> Any:
    """Every string of ``node`` with its ``${...}`` expressions replaced, as ``docker compose config`` does."""
    if isinstance(node, str):
        return _VAR.sub(lambda m: _substitute(m, variables), node)
    if isinstance(node, list):
        return [interpolate(item, variables) for item in node]
    if isinstance(node, dict):
        return {key: interpolate(value, variables) for key, value in node.items()}
    return node


@dataclass(frozen=True)
class Mount:
    """One entry of a service's ``volumes``: a named volume, or a bind mount of a checkout path."""

    kind: str  # "volume" or "bind"
    source: str  # the volume's name, or the host path of a bind mount (resolved against the project folder)
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class Port:
    """One published port: ``host_ip:host_port:container_port``."""

    container_port: int
    host_port: int | None = None
    host_ip: str = ""


@dataclass
class Service:
    """One service of the compose file, with its anchors merged and its variables interpolated."""

    name: str
    image: str = ""
    built: bool = False  # has a ``build`` section: the project's own image
    environment: dict[str, str] = field(default_factory=dict)
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    mounts: list[Mount] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)  # secret name -> path in the container
    ports: list[Port] = field(default_factory=list)
    expose: list[int] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)
    depends_on: dict[str, str] = field(default_factory=dict)  # service -> condition
    replicas: int = 1
    healthcheck: list[str] | None = None
    restart: str = "no"


@dataclass
class ComposeFile:
    path: Path
    project_dir: Path  # where relative paths (bind mounts, secrets, the build context) start
    services: dict[str, Service]
    volumes: list[str]
    secrets: dict[str, Path]  # secret name -> file on this machine
    raw: dict[str, Any]


def _words(value: Any) -> list[str] | None:
    """``command``/``entrypoint``/``healthcheck.test``: a string is split like a shell would, a list is kept."""
    if value is None:
        return None
    if isinstance(value, str):
        return shlex.split(value)
    return [str(item) for item in value]


def _env_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines (``#`` comments, optional ``export`` and quotes), as Compose reads an ``env_file``."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _environment(spec: dict[str, Any], project_dir: Path, variables: Mapping[str, str]) -> dict[str, str]:
    env: dict[str, str] = {}
    env_files = spec.get("env_file") or []
    for entry in [env_files] if isinstance(env_files, str | dict) else env_files:
        path, required = (entry, True) if isinstance(entry, str) else (entry["path"], entry.get("required", True))
        file = project_dir / path
        if file.exists() or required:
            env.update(read_env_file(file))
    declared = spec.get("environment") or {}
    if isinstance(declared, list):
        for item in declared:
            key, sep, value = str(item).partition("=")
            if sep:
                env[key] = value
            elif key in variables:  # `- NAME` alone passes the caller's value through
                env[key] = variables[key]
    else:
        env.update({key: _env_value(value) for key, value in declared.items()})
    return env


def _mount(entry: Any, project_dir: Path) -> Mount:
    if isinstance(entry, dict):
        source, target = str(entry.get("source", "")), str(entry["target"])
        read_only = bool(entry.get("read_only", False))
        kind = str(entry.get("type", "volume"))
    else:
        parts = str(entry).split(":")
        if len(parts) == 1:
            raise ComposeError(f"anonymous volume {entry!r}: give it a name so that it can be shared")
        source, target = parts[0], parts[1]
        read_only = len(parts) > 2 and "ro" in parts[2].split(",")
        kind = "bind" if source.startswith((".", "/", "~")) else "volume"
    if kind == "bind":
        source = str((project_dir / Path(source).expanduser()).resolve())
    return Mount(kind=kind, source=source, target=target.rstrip("/") or "/", read_only=read_only)


def _port(entry: Any) -> Port:
    if isinstance(entry, dict):
        published = entry.get("published")
        return Port(int(entry["target"]), int(published) if published else None, str(entry.get("host_ip", "")))
    parts = str(entry).split("/")[0].split(":")
    if len(parts) == 3:
        return Port(int(parts[2]), int(parts[1]) if parts[1] else None, parts[0])
    if len(parts) == 2:
        return Port(int(parts[1]), int(parts[0]) if parts[0] else None)
    return Port(int(parts[0]))


def _service(name: str, spec: dict[str, Any], project_dir: Path, variables: Mapping[str, str]) -> Service:
    depends = spec.get("depends_on") or {}
    secrets: dict[str, str] = {}
    for entry in spec.get("secrets") or []:
        source = entry if isinstance(entry, str) else entry["source"]
        target = source if isinstance(entry, str) else entry.get("target", source)
        secrets[source] = target if target.startswith("/") else f"/run/secrets/{target}"
    health = spec.get("healthcheck") or {}
    return Service(
        name=name,
        image=str(spec.get("image", "")),
        built="build" in spec,
        environment=_environment(spec, project_dir, variables),
        command=_words(spec.get("command")),
        entrypoint=_words(spec.get("entrypoint")),
        mounts=[_mount(entry, project_dir) for entry in spec.get("volumes") or []],
        secrets=secrets,
        ports=[_port(entry) for entry in spec.get("ports") or []],
        expose=[int(str(port).split("/")[0]) for port in spec.get("expose") or []],
        profiles=[str(p) for p in spec.get("profiles") or []],
        depends_on=(
            {str(d): "service_started" for d in depends}
            if isinstance(depends, list)
            else {str(d): str((c or {}).get("condition", "service_started")) for d, c in depends.items()}
        ),
        replicas=int((spec.get("deploy") or {}).get("replicas", 1)),
        healthcheck=None if health.get("disable") else _words(health.get("test")),
        restart=str(spec.get("restart", "no")),
    )


def load_compose(path: Path, variables: Mapping[str, str], project_dir: Path | None = None) -> ComposeFile:
    """The compose file at ``path``, interpolated with ``variables`` (what the shell and ``.env`` would give).

    :param project_dir: what relative paths start from (``docker compose --project-directory``); the file's folder
        by default.
    """
    path = path.resolve()
    base = (project_dir or path.parent).resolve()
    raw = interpolate(yaml.safe_load(path.read_text(encoding="utf-8")), variables)
    services = {name: _service(name, spec, base, variables) for name, spec in (raw.get("services") or {}).items()}
    secrets = {
        name: (base / Path(spec["file"]).expanduser()).resolve() for name, spec in (raw.get("secrets") or {}).items()
    }
    return ComposeFile(
        path=path, project_dir=base, services=services, volumes=list(raw.get("volumes") or {}), secrets=secrets, raw=raw
    )


@dataclass
class ImageSpec:
    """The final stage of the Dockerfile, as far as a native run is concerned."""

    env: dict[str, str] = field(default_factory=dict)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    workdir: str = "/"
    files: dict[str, Path] = field(default_factory=dict)  # container path -> checkout path (COPY)
    directories: list[str] = field(default_factory=list)  # RUN mkdir -p


def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of the final stage, continuation lines joined, comments dropped."""
    lines = [line for line in dockerfile.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    parsed = [(m.group(1).upper(), m.group(2).strip()) for m in re.finditer(r"^\s*(\w+)\s+(.*)$", joined, re.M)]
    last_from = max(i for i, (word, _) in enumerate(parsed) if word == "FROM")
    return parsed[last_from + 1 :]


def read_dockerfile(path: Path, context: Path) -> ImageSpec:
    """What the image built from ``path`` (build context ``context``) holds and runs."""
    image = ImageSpec(env=dict(BASE_IMAGE_ENV))
    for word, args in _instructions(path.read_text(encoding="utf-8")):
        if word == "ENV":
            image.env.update(dict(item.split("=", 1) for item in shlex.split(args)))
        elif word == "WORKDIR":
            image.workdir = args
        elif word in ("ENTRYPOINT", "CMD"):
            value = json.loads(args) if args.startswith("[") else ["/bin/sh", "-c", args]
            setattr(image, "entrypoint" if word == "ENTRYPOINT" else "cmd", [str(v) for v in value])
        elif word == "COPY":
            parts = shlex.split(args)
            if any(p.startswith("--from") for p in parts):
                continue  # an earlier stage's output (the wheel): the checkout's editable install stands for it
            sources, dest = [p for p in parts[:-1] if not p.startswith("--")], parts[-1]
            into_folder = dest.endswith("/") or len(sources) > 1
            for source in sources:
                target = f"{dest.rstrip('/')}/{Path(source).name}" if into_folder else dest
                image.files[target] = (context / source).resolve()
        elif word == "RUN":
            for match in re.finditer(r"mkdir -p((?:\s+/[^\s&;|]+)+)", args):
                image.directories.extend(match.group(1).split())
    return image
