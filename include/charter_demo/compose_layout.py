"""Where a container's paths and the compose network's host names go when a service runs as a local process.

Paths. Each container (one replica of a service) gets a private folder standing for its root file system. In it,
every path the container shares with something else is a symbolic link: a named volume to one folder of this run
that every service mounting it links to, a bind mount or a file the Dockerfile copies into the image to that file
of the checkout, a secret to its file. Everything else the process writes stays in its private folder, as it would
stay in its container: a folder two services share without a common volume then lands in two places, which is the
fault the native run exists to reveal. Container paths in the environment and the command line are rewritten to
the private folder (``/opt/charter/state`` -> ``<root>/opt/charter/state``), whose links lead to the shared places.

Network. A URL or a ``*_HOST`` variable that names a service of the compose file is rewritten to the loopback
address and port that stands for that service's port (:class:`Network`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import SplitResult, urlsplit

from charter_demo.compose_spec import ComposeError, ComposeFile, ImageSpec, Service

__all__ = ["DEFAULT_PORTS", "Layout", "Network", "build_layout"]


def _inside(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


@dataclass
class Layout:
    """The file system of one container: ``root`` for its own files, ``links`` for what it shares.

    :param links: container path -> the path of this machine it stands for (a volume's folder, a checkout file,
        a secret file).
    :param directories: container folders the image creates (``RUN mkdir -p``, ``WORKDIR``, the homes).
    :param writable: folders of this run in which :meth:`materialise` may create folders (the private root and the
        volumes), never the checkout.
    """

    root: Path
    links: dict[str, Path] = field(default_factory=dict)
    directories: list[str] = field(default_factory=list)
    writable: tuple[Path, ...] = ()
    _pattern: re.Pattern[str] | None = field(default=None, repr=False)

    def _link_of(self, container_path: str) -> str | None:
        found = [prefix for prefix in self.links if _inside(container_path, prefix)]
        return max(found, key=len) if found else None

    def host_path(self, container_path: str) -> Path:
        """The path a process of this container is given for ``container_path`` (links may lead elsewhere)."""
        return self.root / PurePosixPath(container_path).relative_to("/")

    def location(self, container_path: str) -> Path:
        """Where the bytes of ``container_path`` are: in a shared place when a link covers it, else private."""
        prefix = self._link_of(container_path)
        if prefix is None:
            return self.host_path(container_path)
        rest = PurePosixPath(container_path).relative_to(prefix)
        return self.links[prefix] / rest if str(rest) != "." else self.links[prefix]

    def rewrite(self, text: str) -> str:
        """``text`` with every container path (under the container's own top folders) made a path of this machine."""
        if self._pattern is None:
            tops = {
                PurePosixPath(p).parts[1] for p in [*self.links, *self.directories] if len(PurePosixPath(p).parts) > 1
            }
            alternatives = "|".join(sorted(map(re.escape, tops)))
            self._pattern = re.compile(rf"(?<![\w.~$-])/(?:{alternatives})(?=/|$|[\s:;,'\"])[^\s:;,'\"]*")
        return self._pattern.sub(lambda m: str(self.host_path(m.group(0))), text)

    def materialise(self) -> None:
        """Create the private folder, the image's folders and the links (idempotent)."""
        self.root.mkdir(parents=True, exist_ok=True)
        for prefix in sorted(self.links, key=lambda p: len(PurePosixPath(p).parts)):
            outer = [other for other in self.links if other != prefix and _inside(prefix, other)]
            if outer:
                raise ComposeError(f"{prefix} is mounted inside {outer[0]}: nested mounts are not supported")
            target, link = self.links[prefix], self.host_path(prefix)
            if not target.exists():
                raise ComposeError(f"{target} (mounted at {prefix}) does not exist")
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink() and link.readlink() == target:
                continue
            link.symlink_to(target, target_is_directory=target.is_dir())
        for folder in self.directories:
            place = self.location(folder)
            if any(place == w or place.is_relative_to(w) for w in self.writable):
                place.mkdir(parents=True, exist_ok=True)

    def private_files(self) -> list[str]:
        """Container paths of the files this container wrote in its private folder (links are not followed)."""
        found = []
        for folder, _dirs, files in os.walk(self.root):  # os.walk does not follow symbolic links by default
            for name in files:
                path = Path(folder) / name
                if not path.is_symlink():
                    found.append("/" + path.relative_to(self.root).as_posix())
        return sorted(found)


def build_layout(
    service: Service,
    compose: ComposeFile,
    image: ImageSpec | None,
    root: Path,
    volumes_dir: Path,
    extra_links: Mapping[str, Path] | None = None,
) -> Layout:
    """The layout of one container of ``service``: image files, then its mounts and secrets over them."""
    links: dict[str, Path] = dict(image.files) if image else {}
    for mount in service.mounts:
        if mount.kind == "volume":
            if mount.source not in compose.volumes:
                raise ComposeError(
                    f"{service.name} mounts volume {mount.source}, which the compose file does not declare"
                )
            links[mount.target] = volumes_dir / mount.source
        else:
            links[mount.target] = Path(mount.source)
    for name, target in service.secrets.items():
        if name not in compose.secrets:
            raise ComposeError(f"{service.name} uses secret {name}, which the compose file does not declare")
        links[target] = compose.secrets[name]
    links.update(extra_links or {})
    directories = [*image.directories, image.workdir] if image else []
    env = {**(image.env if image else {}), **service.environment}
    directories += [env[name] for name in ("AIRFLOW_HOME", "HOME", "CHARTER_HOME") if env.get(name, "").startswith("/")]
    return Layout(root=root, links=links, directories=directories, writable=(root, volumes_dir))


#: Ports a URL means when it names none.
DEFAULT_PORTS = {"postgresql": 5432, "postgres": 5432, "redis": 6379, "http": 80, "https": 443, "smtp": 25}
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>[^\s'\"]+)")
#: Adjusts the credentials and path of a URL that reaches a service: (user info or None, path).
UrlHook = Callable[[SplitResult], tuple[str | None, str]]


@dataclass
class Network:
    """The compose network's ``service:port`` addresses -> this machine's ``host:port``.

    :param addresses: ``(service, container port) -> (host, port)``.
    :param hooks: per service, what else its URLs need (a database or user name of this run, no password).
    """

    addresses: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    hooks: dict[str, UrlHook] = field(default_factory=dict)

    @property
    def services(self) -> set[str]:
        return {service for service, _ in self.addresses}

    def urls_to(self, service: str, texts: Iterator[str] | list[str]) -> list[SplitResult]:
        """The URLs of ``texts`` that reach ``service``."""
        found = []
        for text in texts:
            for match in _URL.finditer(text):
                parts = urlsplit(match.group(0))
                if parts.hostname == service:
                    found.append(parts)
        return found

    def _address(self, service: str, port: int) -> tuple[str, int]:
        if (service, port) not in self.addresses:
            raise ComposeError(f"port {port} of service {service} is not reachable in the native run")
        return self.addresses[(service, port)]

    def _url(self, match: re.Match[str]) -> str:
        parts = urlsplit(match.group(0))
        service = parts.hostname
        if service not in self.services:
            return match.group(0)
        # postgresql+psycopg2, db+postgresql: the default port is the database's
        default = next((DEFAULT_PORTS[p] for p in parts.scheme.split("+") if p in DEFAULT_PORTS), 80)
        host, port = self._address(service, parts.port or default)
        userinfo, path = parts.netloc.rpartition("@")[0] or None, parts.path
        if service in self.hooks:
            userinfo, path = self.hooks[service](parts)
        netloc = f"{userinfo + '@' if userinfo else ''}{host}:{port}"
        return parts._replace(netloc=netloc, path=path).geturl()

    def rewrite(self, text: str) -> str:
        """``text`` with every URL that names a service pointed at the address standing for it."""
        return _URL.sub(self._url, text)

    def rewrite_env(self, env: Mapping[str, str]) -> dict[str, str]:
        """URLs rewritten, and ``<X>_HOST: <service>`` with its ``<X>_PORT`` pointed at the service's address."""
        result = {key: self.rewrite(value) for key, value in env.items()}
        for key, value in env.items():
            if key.endswith("_HOST") and value in self.services:
                port_key = key.removesuffix("_HOST") + "_PORT"
                port = int(env[port_key]) if env.get(port_key, "").isdigit() else None
                ports = [p for s, p in self.addresses if s == value]
                host, mapped = self._address(value, port if port is not None else ports[0])
                result[key] = host
                if port is not None:
                    result[port_key] = str(mapped)
        return result
