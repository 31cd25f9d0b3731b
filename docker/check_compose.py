"""Offline checks of compose files that a JSON schema cannot make (used by validate.sh).

    python docker/check_compose.py [--interpolated-dir DIR] STACK...

A STACK is a compose file, or several joined with `:` as in COMPOSE_FILE
(`compose.yaml:docker/docker-compose.yml`): each file is interpolated on its own, then merged
over the ones before it (mappings key by key; `command`, `entrypoint` and health check tests
replaced; other lists extended), and relative paths are taken from the first file's
directory, as `docker compose -f A -f B` does. For each stack:
- YAML: it parses, with anchors resolved, and no mapping repeats a key (Compose rejects
  duplicates; most YAML loaders silently keep the last one).
- Interpolation: every `$` is valid Compose syntax (`$$`, `$VAR`, `${VAR}`, `${VAR:-default}`,
  `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}`); every
  variable has a default or is required; the stack interpolates once the required variables
  are set, and refuses to when they are missing. With --interpolated-dir the merged model is
  written there as JSON, for check-jsonschema to validate what Compose would see.
- Types: restart policies and boolean options hold values Compose accepts after interpolation.
- References: depends_on targets exist, `service_healthy` targets have a health check,
  `service_completed_successfully` targets are not restarted; named volumes, configs and
  secrets are declared; bind-mount sources, `env_file` files (unless `required: false`),
  config and secret files, build contexts and Dockerfiles exist; services sharing an image
  tag build it the same way.
- Build contexts: each Dockerfile's COPY/ADD sources exist in the context and are not
  excluded by its dockerignore (`<Dockerfile>.dockerignore`, else `<context>/.dockerignore`,
  with Docker's pattern rules), and local state (.git, .venv, .data, .env) is excluded; for
  a production Dockerfile (ENVIRONMENT=production) the tests too.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import shlex
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
OPERATORS = (":-", ":?", ":+", "-", "?", "+")
NEVER_IN_CONTEXT = (".git/HEAD", ".venv/bin/python", ".data/postgres/PG_VERSION", ".env")
NEVER_IN_PRODUCTION_CONTEXT = ("tests/conftest.py",)


class InterpolationError(ValueError):
    pass


# --- YAML ------------------------------------------------------------------------------


class StrictLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys in a mapping, as Compose does."""


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)  # type: ignore[no-untyped-call]
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,  # type: ignore[arg-type]
)


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as stream:
        return yaml.load(stream, Loader=StrictLoader)  # noqa: S506 (a SafeLoader subclass)


# --- Interpolation (Compose specification, "Interpolation") ------------------------------


@dataclass
class Interpolation:
    environment: Mapping[str, str]
    used: set[str] = field(default_factory=set)
    required: set[str] = field(default_factory=set)
    without_default: set[str] = field(default_factory=set)

    def substitute(self, text: str) -> str:
        out: list[str] = []
        i = 0
        while i < len(text):
            char = text[i]
            if char != "$":
                out.append(char)
                i += 1
                continue
            following = text[i + 1 : i + 2]
            if following == "$":
                out.append("$")
                i += 2
            elif following == "{":
                end = _closing_brace(text, i + 2)
                out.append(self._braced(text[i + 2 : end]))
                i = end + 1
            elif match := NAME.match(text, i + 1):
                out.append(self._value(match.group(0), None, None))
                i = match.end()
            else:
                raise InterpolationError(f"invalid interpolation at {text[i:]!r} (use $$ for $)")
        return "".join(out)

    def _braced(self, body: str) -> str:
        match = NAME.match(body)
        if match is None:
            raise InterpolationError(f"invalid variable name in ${{{body}}}")
        name, rest = match.group(0), body[match.end() :]
        if not rest:
            return self._value(name, None, None)
        for operator in OPERATORS:
            if rest.startswith(operator):
                return self._value(name, operator, rest[len(operator) :])
        raise InterpolationError(f"invalid interpolation ${{{body}}}")

    def _value(self, name: str, operator: str | None, argument: str | None) -> str:
        self.used.add(name)
        value = self.environment.get(name)
        if operator is None:
            if value is None:
                self.without_default.add(name)
            return value or ""
        assert argument is not None
        if operator in (":?", "?"):
            self.required.add(name)
            if value is None or (operator == ":?" and value == ""):
                raise InterpolationError(f"required variable {name} is missing: {argument}")
            return value
        if operator in (":-", "-"):
            if value is None or (operator == ":-" and value == ""):
                return self.substitute(argument)  # defaults may nest interpolations
            return value
        present = value is not None and (operator == "+" or value != "")
        return self.substitute(argument) if present else ""

    def walk(self, node: Any) -> Any:
        """Interpolate every string value (never a key), as Compose does."""
        if isinstance(node, str):
            return self.substitute(node)
        if isinstance(node, list):
            return [self.walk(item) for item in node]
        if isinstance(node, dict):
            return {key: self.walk(value) for key, value in node.items()}
        return node


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("$$", i):
            i += 2
            continue
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise InterpolationError(f"unclosed ${{ in {text!r}")


# --- .dockerignore (moby/patternmatcher semantics) -------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            if pattern.startswith("**/", i):
                out.append("(?:.*/)?")
                i += 3
            else:
                out.append(".*")
                i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                raise ValueError(f"unclosed [ in dockerignore pattern {pattern!r}")
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("^") else body) + "]")
            i = end + 1
            continue
        elif char == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out) + r"\Z")


@dataclass
class DockerIgnore:
    source: Path | None
    patterns: list[tuple[bool, re.Pattern[str]]]

    @classmethod
    def read(cls, path: Path | None) -> DockerIgnore:
        patterns: list[tuple[bool, re.Pattern[str]]] = []
        if path is not None and path.is_file():
            for raw in path.read_text(encoding="utf-8").splitlines():
                line = raw.strip()
                if not line or line.startswith("#"):
                    continue
                exception = line.startswith("!")
                cleaned = _clean(line[1:].strip() if exception else line)
                if cleaned:
                    patterns.append((exception, _pattern_regex(cleaned)))
            return cls(path, patterns)
        return cls(None, patterns)

    def excluded(self, relative: str) -> bool:
        """Whether `relative` (a path in the context) is left out of the build context."""
        parts = relative.split("/")
        parents = ["/".join(parts[: i + 1]) for i in range(len(parts) - 1)]
        matched = False
        for exception, regex in self.patterns:
            if exception != matched:
                continue
            if regex.match(relative) or any(regex.match(parent) for parent in parents):
                matched = not exception
        return matched


def _clean(pattern: str) -> str:
    parts: list[str] = []
    for part in pattern.strip("/").split("/"):
        if part in ("", "."):
            continue
        if part == ".." and parts:
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)


# --- Dockerfiles -----------------------------------------------------------------------


def dockerfile_instructions(path: Path) -> Iterator[tuple[str, str]]:
    logical = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if not logical and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            logical += stripped[:-1] + " "
            continue
        logical += stripped
        keyword, _, rest = logical.partition(" ")
        yield keyword.upper(), rest.strip()
        logical = ""


def copy_sources(arguments: str) -> list[str] | None:
    """The context sources of a COPY/ADD, or None when it copies from a stage or image."""
    if arguments.startswith("["):
        words: list[str] = json.loads(arguments)
    else:
        words = shlex.split(arguments)
    flags = [word for word in words if word.startswith("--")]
    if any(flag.startswith("--from") for flag in flags):
        return None
    paths = [word for word in words if not word.startswith("--")]
    return paths[:-1]


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def error(self, message: str) -> None:
        self.errors.append(message)

    def ok(self, message: str) -> None:
        self.notes.append(message)


def check_build(context: Path, dockerfile: Path, report: Report) -> None:
    """COPY sources present and admitted by the dockerignore; local state kept out."""
    ignore_file = Path(f"{dockerfile}.dockerignore")
    ignore = DockerIgnore.read(ignore_file if ignore_file.is_file() else context / ".dockerignore")
    files = [
        path.relative_to(context).as_posix()
        for path in context.rglob("*")
        if path.is_file() and not path.is_symlink()
    ]
    shipped = [name for name in files if not ignore.excluded(name)]
    label = f"{dockerfile.relative_to(context)}"
    text = dockerfile.read_text(encoding="utf-8")

    copied = 0
    for keyword, arguments in dockerfile_instructions(dockerfile):
        if keyword not in ("COPY", "ADD"):
            continue
        sources = copy_sources(arguments)
        for source in sources or []:
            copied += 1
            cleaned = _clean(source)
            if cleaned == "":
                hits = shipped
            else:
                regex = _pattern_regex(cleaned)
                hits = [
                    name
                    for name in shipped
                    if regex.match(name) or any(regex.match(p) for p in _parents(name))
                ]
            if hits:
                continue
            if any(char in source for char in "*?["):
                report.ok(f"{label}: COPY {source} matches nothing now (allowed for a wildcard)")
            else:
                where = f"excluded by {ignore.source.name}" if ignore.source else "missing"
                report.error(f"{label}: COPY source {source!r} is not in the context ({where})")

    never = list(NEVER_IN_CONTEXT)
    if re.search(r"\bENVIRONMENT=production\b", text):
        never += NEVER_IN_PRODUCTION_CONTEXT
    leaks = [name for name in never if not ignore.excluded(name)]
    if leaks:
        report.error(f"{label}: the build context would include {', '.join(leaks)}")
    report.ok(
        f"{label}: {copied} COPY sources present in the context; "
        f"{len(shipped)} of {len(files)} files sent; kept out: {', '.join(never)}"
    )


def _parents(name: str) -> list[str]:
    parts = name.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts) - 1)]


# --- Compose model ---------------------------------------------------------------------


def _depends_on(service: Mapping[str, Any]) -> dict[str, str]:
    value = service.get("depends_on") or {}
    if isinstance(value, list):
        return dict.fromkeys(value, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in value.items()}


def _build(service: Mapping[str, Any]) -> dict[str, Any] | None:
    build = service.get("build")
    if build is None:
        return None
    return {"context": build} if isinstance(build, str) else dict(build)


RESTART = re.compile(r"no|always|unless-stopped|on-failure(?::[0-9]+)?")
BOOLEANS = ("read_only", "init", "privileged", "tty", "stdin_open", "oom_kill_disable")


def _typed_values(service: Mapping[str, Any]) -> list[str]:
    """Values the schema accepts as strings (for interpolation) but Compose then types."""
    problems: list[str] = []
    restart = service.get("restart")
    if restart is not None and not RESTART.fullmatch(str(restart)):
        problems.append(f"restart: {restart!r} is not no|always|unless-stopped|on-failure[:N]")
    for key in BOOLEANS:
        value = service.get(key)
        if value is not None and not isinstance(value, bool) and value not in ("true", "false"):
            problems.append(f"{key}: {value!r} is not a boolean")
    return problems


def _has_healthcheck(service: Mapping[str, Any], base: Path) -> bool:
    check = service.get("healthcheck") or {}
    if check.get("disable"):
        return False
    if "test" in check:
        return check["test"] not in (["NONE"], "NONE")
    build = _build(service)
    if build is None:
        return True  # an image from a registry: its own HEALTHCHECK cannot be read offline
    dockerfile = (base / build["context"]) / build.get("dockerfile", "Dockerfile")
    return dockerfile.is_file() and any(
        keyword == "HEALTHCHECK" and not arguments.upper().startswith("NONE")
        for keyword, arguments in dockerfile_instructions(dockerfile)
    )


def _env_files(service: Mapping[str, Any]) -> Iterator[tuple[str, bool]]:
    """Each `env_file` of a service with whether it must exist (`required: false` may not)."""
    value = service.get("env_file") or []
    for entry in [value] if isinstance(value, str) else value:
        if isinstance(entry, str):
            yield entry, True
        else:
            yield entry["path"], entry.get("required", True) not in (False, "false")


def _file_references(
    model: Mapping[str, Any], service: Mapping[str, Any], base: Path
) -> Iterator[str]:
    """Problems with the configs and secrets a service mounts, and the files they come from."""
    for kind in ("configs", "secrets"):
        declared: Mapping[str, Any] = model.get(kind) or {}
        for entry in service.get(kind) or []:
            source = entry if isinstance(entry, str) else entry.get("source")
            if source not in declared:
                yield f"{kind[:-1]} {source!r} is not declared under {kind}:"
            elif (file := (declared[source] or {}).get("file")) and not (base / file).is_file():
                yield f"{kind[:-1]} {source!r}: file {file} does not exist"


def check_model(label: str, base: Path, model: Mapping[str, Any], report: Report) -> None:
    """References between services and to files, relative to `base`, the project directory."""
    errors_before = len(report.errors)
    services: Mapping[str, Any] = model.get("services") or {}
    volumes_declared = set((model.get("volumes") or {}).keys())
    if not services:
        report.error(f"{label}: no services")
    images: dict[str, tuple[str, dict[str, Any] | None]] = {}
    builds: set[tuple[Path, Path]] = set()

    for name, service in services.items():
        where = f"{label}: service {name}"
        build = _build(service)
        if build is None and "image" not in service:
            report.error(f"{where}: neither image nor build")
        if build is not None:
            context = (base / build.get("context", ".")).resolve()
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            if not context.is_dir():
                report.error(f"{where}: build context {context} is not a directory")
            elif "dockerfile_inline" not in build and not dockerfile.is_file():
                report.error(f"{where}: Dockerfile {dockerfile} does not exist")
            else:
                builds.add((context, dockerfile))
        for problem in _typed_values(service):
            report.error(f"{where}: {problem}")
        image = service.get("image")
        if image is not None:
            earlier = images.setdefault(image, (name, build))
            if earlier[1] != build and build is not None and earlier[1] is not None:
                report.error(f"{where}: builds image {image} unlike service {earlier[0]}")

        for target, condition in _depends_on(service).items():
            if target not in services:
                report.error(f"{where}: depends_on unknown service {target!r}")
                continue
            if condition == "service_healthy" and not _has_healthcheck(services[target], base):
                report.error(f"{where}: waits for {target} healthy, which has no health check")
            if condition == "service_completed_successfully" and services[target].get(
                "restart", "no"
            ) not in ("no", "on-failure"):
                report.error(f"{where}: waits for {target} to complete, but it is restarted")

        for volume in service.get("volumes") or []:
            if isinstance(volume, str):
                source = volume.split(":", 1)[0] if ":" in volume else None
                kind = "bind" if source and source[0] in "./~" else "volume"
            else:
                source, kind = volume.get("source"), volume.get("type", "volume")
            if not source:
                continue  # an anonymous volume
            if kind == "bind":
                if not (base / source).exists():
                    report.error(f"{where}: bind-mount source {source} does not exist")
            elif kind == "volume" and source not in volumes_declared:
                report.error(f"{where}: volume {source!r} is not declared under volumes:")

        for env_file, required in _env_files(service):
            if required and not (base / env_file).is_file():
                report.error(f"{where}: env_file {env_file} does not exist")
        for problem in _file_references(model, service, base):
            report.error(f"{where}: {problem}")

    for context, dockerfile in sorted(builds):
        check_build(context, dockerfile, report)
    if len(report.errors) == errors_before:
        report.ok(
            f"{label}: {len(services)} services: types, references, mounts, files and builds valid"
        )


REPLACED_LISTS = frozenset({"command", "entrypoint", "test"})


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


def check_stack(paths: list[Path], interpolated_dir: Path | None, report: Report) -> None:
    label = ":".join(str(path) for path in paths)
    raws: list[dict[str, Any]] = []
    for path in paths:
        try:
            raw = load_yaml(path)
        except yaml.YAMLError as error:
            report.error(f"{path}: invalid YAML: {error}")
            return
        if not isinstance(raw, dict):
            report.error(f"{path}: not a mapping at the top level")
            return
        raws.append(raw)

    # Interpolate as a user who set exactly the required variables, then as one who did not.
    errors_before = len(report.errors)
    required = set().union(*(_required_variables(raw) for raw in raws))
    sample = {name: f"sample-{name.lower()}-for-validation-0123456789abcdef" for name in required}
    interpolation = Interpolation(sample)
    try:
        layers = [interpolation.walk(raw) for raw in raws]
    except InterpolationError as error:
        report.error(f"{label}: {error}")
        return
    model = functools.reduce(merge, layers)
    if interpolation.without_default:
        names = ", ".join(sorted(interpolation.without_default))
        report.error(f"{label}: no default for {names} (Compose would use an empty string)")
    if required:
        try:
            for raw in raws:
                Interpolation({}).walk(raw)
        except InterpolationError:
            pass
        else:
            report.error(f"{label}: interpolated although {', '.join(sorted(required))} unset")
    if len(report.errors) == errors_before:
        report.ok(
            f"{label}: YAML and interpolation valid; {len(interpolation.used)} variables, "
            "required: "
            + (f"{', '.join(sorted(required))} (refused when unset)" if required else "none")
        )

    if interpolated_dir is not None:
        interpolated_dir.mkdir(parents=True, exist_ok=True)
        target = interpolated_dir / f"{'+'.join(path.stem for path in paths)}.interpolated.json"
        target.write_text(json.dumps(model, indent=2), encoding="utf-8")
    check_model(label, paths[0].parent, model, report)


def _required_variables(raw: Any) -> set[str]:
    found: set[str] = set()

    def visit(node: Any, on_string: Callable[[str], None]) -> None:
        if isinstance(node, str):
            on_string(node)
        elif isinstance(node, list):
            for item in node:
                visit(item, on_string)
        elif isinstance(node, dict):
            for value in node.values():
                visit(value, on_string)

    def scan(text: str) -> None:
        for match in re.finditer(r"(?<!\$)\$\{([_A-Za-z][_A-Za-z0-9]*):?\?", text):
            found.add(match.group(1))

    visit(raw, scan)
    return found


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
