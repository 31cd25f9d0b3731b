"""Our rules for the compose stacks, which the Compose schema cannot check (used by validate.sh).

    python docker/check_compose.py [--interpolated-dir DIR] STACK...

A STACK is a compose file, or several joined with `:` as in COMPOSE_FILE
(`compose.yaml:docker/docker-compose.yml`): each file is interpolated on its own, then merged
over the ones before it (mappings key by key; `command`, `entrypoint` and health check tests
replaced; other lists extended), and relative paths are taken from the first file's
directory, as `docker compose -f A -f B` does. YAML syntax, duplicate keys and the
compose-spec schema are check-jsonschema's (validate.sh runs it on the files, and on the
merged stacks written to --interpolated-dir). For each stack:
- Variables: every `$` is Compose syntax (nesting aside); every variable has a default or is
  required, so development needs nothing exported; the required ones (production's secrets,
  which tests/test_compose.py sees refused when unset) are listed.
- Services: depends_on targets exist, `service_healthy` ones have a health check (their own
  or their Dockerfile's), `service_completed_successfully` ones are not restarted; named
  volumes are declared and bind-mounted paths exist; services sharing an image tag build it
  the same way.
- Builds: every COPY/ADD source is in the build context and admitted by its dockerignore
  (`<Dockerfile>.dockerignore`, else `<context>/.dockerignore`, matched by docker-py with
  Docker's rules); .git, .venv, .data and .env stay out, and for the production image
  (ENVIRONMENT=production) the tests too.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import re
import shlex
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from docker.utils.build import PatternMatcher
from dockerfile_parse import DockerfileParser

VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<named>[_A-Za-z][_A-Za-z0-9]*)"
    r"|\{(?P<braced>[_A-Za-z][_A-Za-z0-9]*)(?:(?P<operator>:?[-?+])(?P<argument>[^}$]*))?\}"
    r"|(?P<invalid>))"
)
REPLACED_LISTS = frozenset({"command", "entrypoint", "test"})
NEVER_IN_CONTEXT = (".git/HEAD", ".venv/bin/python", ".data/postgres/PG_VERSION", ".env")
NEVER_IN_PRODUCTION_CONTEXT = ("tests/conftest.py",)


@dataclass
class Interpolation:
    """Compose's `$$`, `$VAR`, `${VAR}`, `${VAR[:]-default}`, `${VAR[:]?error}`, `${VAR[:]+alt}`."""

    lookup: Callable[[str], str | None]
    required: set[str] = field(default_factory=set)
    without_default: set[str] = field(default_factory=set)

    def walk(self, node: Any) -> Any:
        """Every string value interpolated (never a key), as Compose does."""
        if isinstance(node, str):
            return VARIABLE.sub(self._replace, node)
        if isinstance(node, list):
            return [self.walk(item) for item in node]
        if isinstance(node, dict):
            return {key: self.walk(value) for key, value in node.items()}
        return node

    def _replace(self, match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["named"] or match["braced"]
        if name is None:
            raise ValueError(f"invalid or nested interpolation in {match.string!r} ($$ for $)")
        operator, argument = match["operator"] or "", match["argument"] or ""
        value = self.lookup(name)
        present = value is not None and (value != "" or not operator.startswith(":"))
        if operator.endswith("-"):
            return (value or "") if present else argument
        if operator.endswith("+"):
            return argument if present else ""
        if operator.endswith("?"):
            self.required.add(name)
            if not present:
                raise ValueError(f"required variable {name} is missing: {argument}")
        else:
            self.without_default.add(name)
        return value or ""


def _sample(name: str) -> str:
    return f"sample-{name.lower()}-for-validation-0123456789abcdef"


def merge(base: Any, override: Any, key: str | None = None) -> Any:
    """`override` over `base` as Compose merges files (the simplification the docstring says)."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for name, value in override.items():
            merged[name] = merge(base[name], value, name) if name in base else value
        return merged
    if isinstance(base, list) and isinstance(override, list) and key not in REPLACED_LISTS:
        return base + [item for item in override if item not in base]
    return override


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --- Builds ------------------------------------------------------------------------------


def _dockerfile(path: Path) -> DockerfileParser:
    return DockerfileParser(fileobj=io.BytesIO(path.read_bytes()))


def _copy_sources(arguments: str) -> list[str]:
    """The context sources of a COPY/ADD; none when it copies from a stage or an image."""
    words = shlex.split(arguments) if not arguments.startswith("[") else json.loads(arguments)
    if any(word.startswith("--from") for word in words):
        return []
    return [word for word in words if not word.startswith("--")][:-1]


def _shipped(context: Path, pattern: str, shipped: list[str]) -> bool:
    """Whether the build sends a file that COPY `pattern` names (itself or inside it)."""
    if pattern in ("", "."):
        return bool(shipped)
    named = [path.relative_to(context).as_posix() for path in context.glob(pattern)]
    return any(file == name or file.startswith(f"{name}/") for name in named for file in shipped)


def check_build(context: Path, dockerfile: Path, report: Report) -> None:
    """COPY sources present and admitted by the dockerignore; local state kept out."""
    ignore_file = Path(f"{dockerfile}.dockerignore")
    if not ignore_file.is_file():
        ignore_file = context / ".dockerignore"
    lines = ignore_file.read_text(encoding="utf-8").splitlines() if ignore_file.is_file() else []
    ignore = PatternMatcher([line.strip() for line in lines if line.strip()[:1] not in ("", "#")])
    shipped = [path for path in ignore.walk(str(context)) if (context / path).is_file()]
    label = dockerfile.relative_to(context)
    parsed = _dockerfile(dockerfile)

    sources = [
        source
        for instruction in parsed.structure
        if instruction["instruction"] in ("COPY", "ADD")
        for source in _copy_sources(instruction["value"])
    ]
    for source in sources:
        if _shipped(context, source.strip("/"), shipped):
            continue
        if any(char in source for char in "*?["):
            report.notes.append(
                f"{label}: COPY {source} matches nothing now (allowed for a wildcard)"
            )
        else:
            where = f"excluded by {ignore_file.name}" if (context / source).exists() else "missing"
            report.errors.append(f"{label}: COPY source {source!r} is not in the context ({where})")

    never = [*NEVER_IN_CONTEXT]
    if parsed.envs.get("ENVIRONMENT") == "production":
        never += NEVER_IN_PRODUCTION_CONTEXT
    if leaks := [name for name in never if not ignore.matches(name)]:
        report.errors.append(f"{label}: the build context would include {', '.join(leaks)}")
    report.notes.append(
        f"{label}: {len(sources)} COPY sources present in the context; "
        f"{len(shipped)} files sent; kept out: {', '.join(never)}"
    )


# --- Services ----------------------------------------------------------------------------


def _build(service: Mapping[str, Any]) -> dict[str, Any] | None:
    build = service.get("build")
    if build is None:
        return None
    return {"context": build} if isinstance(build, str) else dict(build)


def _depends_on(service: Mapping[str, Any]) -> dict[str, str]:
    value = service.get("depends_on") or {}
    if isinstance(value, list):
        return dict.fromkeys(value, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in value.items()}


def _has_healthcheck(service: Mapping[str, Any], base: Path) -> bool:
    check = service.get("healthcheck") or {}
    if check.get("disable"):
        return False
    if "test" in check:
        return check["test"] not in (["NONE"], "NONE")
    build = _build(service)
    if build is None:
        return True  # an image from a registry: its own HEALTHCHECK cannot be read offline
    dockerfile = base / build.get("context", ".") / build.get("dockerfile", "Dockerfile")
    return dockerfile.is_file() and any(
        instruction["instruction"] == "HEALTHCHECK"
        and not instruction["value"].upper().startswith("NONE")
        for instruction in _dockerfile(dockerfile).structure
    )


def _volumes(service: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """Each mount's source and type (`bind` or `volume`); anonymous volumes left out."""
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            source = volume.split(":", 1)[0] if ":" in volume else ""
            kind = "bind" if source[:1] in (".", "/", "~") else "volume"
        else:
            source, kind = volume.get("source") or "", volume.get("type", "volume")
        if source:
            yield source, kind


def check_services(label: str, base: Path, model: Mapping[str, Any], report: Report) -> None:
    """References between services, to volumes and to files, relative to `base`."""
    errors_before = len(report.errors)
    services: Mapping[str, Any] = model.get("services") or {}
    images: dict[str, tuple[str, dict[str, Any] | None]] = {}
    builds: set[tuple[Path, Path]] = set()
    for name, service in services.items():
        where = f"{label}: service {name}"
        build = _build(service)
        if build is None and "image" not in service:
            report.errors.append(f"{where}: neither image nor build")
        if build is not None:
            context = (base / build.get("context", ".")).resolve()
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            if dockerfile.is_file():
                builds.add((context, dockerfile))
            elif "dockerfile_inline" not in build:
                report.errors.append(f"{where}: Dockerfile {dockerfile} does not exist")
        if (image := service.get("image")) is not None:
            first, first_build = images.setdefault(image, (name, build))
            if None not in (build, first_build) and build != first_build:
                report.errors.append(f"{where}: builds image {image} unlike service {first}")

        for target, condition in _depends_on(service).items():
            if target not in services:
                report.errors.append(f"{where}: depends_on unknown service {target!r}")
            elif condition == "service_healthy" and not _has_healthcheck(services[target], base):
                report.errors.append(
                    f"{where}: waits for {target} healthy, which has no health check"
                )
            elif condition == "service_completed_successfully" and services[target].get(
                "restart", "no"
            ) not in ("no", "on-failure"):
                report.errors.append(
                    f"{where}: waits for {target} to complete, but it is restarted"
                )

        for source, kind in _volumes(service):
            if kind == "bind" and not (base / source).exists():
                report.errors.append(f"{where}: bind-mount source {source} does not exist")
            elif kind == "volume" and source not in (model.get("volumes") or {}):
                report.errors.append(f"{where}: volume {source!r} is not declared under volumes:")

    for context, dockerfile in sorted(builds):
        check_build(context, dockerfile, report)
    if len(report.errors) == errors_before:
        report.notes.append(
            f"{label}: {len(services)} services: references, mounts and builds valid"
        )


# --- Stacks ------------------------------------------------------------------------------


def check_stack(paths: list[Path], interpolated_dir: Path | None, report: Report) -> None:
    label = ":".join(str(path) for path in paths)
    try:
        raws = [yaml.safe_load(path.read_text(encoding="utf-8")) for path in paths]
        # Find the required variables, then interpolate as a user who set exactly those.
        everything = Interpolation(_sample)
        for raw in raws:
            everything.walk(raw)
        required = everything.required
        layers = [
            Interpolation({name: _sample(name) for name in required}.get).walk(raw) for raw in raws
        ]
    except (yaml.YAMLError, ValueError) as error:
        report.errors.append(f"{label}: {error}")
        return
    if everything.without_default:
        names = ", ".join(sorted(everything.without_default))
        report.errors.append(f"{label}: no default for {names} (Compose would use an empty string)")
    else:
        names = ", ".join(sorted(required)) or "none"
        report.notes.append(f"{label}: interpolation valid; required (refused when unset): {names}")

    model = functools.reduce(merge, layers)
    if interpolated_dir is not None:
        interpolated_dir.mkdir(parents=True, exist_ok=True)
        target = interpolated_dir / f"{'+'.join(path.stem for path in paths)}.interpolated.json"
        target.write_text(json.dumps(model, indent=2), encoding="utf-8")
    check_services(label, paths[0].parent, model, report)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stacks", nargs="+", metavar="STACK", help="FILE[:OVERRIDE...]")
    parser.add_argument("--interpolated-dir", type=Path)
    args = parser.parse_args(argv)
    report = Report()
    for stack in args.stacks:
        check_stack([Path(name) for name in stack.split(":")], args.interpolated_dir, report)
    for note in report.notes:
        print(f"  ok: {note}")
    for error in report.errors:
        print(f"  FAIL: {error}", file=sys.stderr)
    return 1 if report.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
