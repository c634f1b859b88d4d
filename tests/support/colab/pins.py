"""Colab's package list, read from the dated copy of googlecolab/backend-info's pip-freeze.txt.

`python tests/support/colab/pins.py DIR` writes DIR/colab-pins.txt (the packages the rehearsal installs,
at Colab's versions) and DIR/colab-constraints.txt (every version Colab ships, so that their
dependencies land on Colab's versions too). Standard library only: it runs before any venv.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Colab installs these from download.pytorch.org (CPU builds) or from its own disk; neither is
# reachable here. The same versions come from PyPI instead (see docs/colab.md).
URL_VERSION = re.compile(r"^(?P<name>[A-Za-z0-9_]+)-(?P<version>[0-9][0-9A-Za-z.]*)(%2B|\+|-)")
LEFT_OUT = {"google-colab"}  # a stand-in module replaces it (tests/support/colab/stub)
# PyPI's torch is a CUDA build and pins its own CUDA libraries; Colab's CPU build needs none, and
# the ones Colab lists belong to other packages. Not constrained, so torch gets the ones it names.
NOT_CONSTRAINED = ("nvidia-", "cuda-", "triton")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def freeze_file() -> Path:
    """The newest dated copy: tests/support/colab/pip-freeze-YYYY-MM-DD.txt."""
    return sorted(HERE.glob("pip-freeze-*.txt"))[-1]


def colab_versions(path: Path | None = None) -> dict[str, str]:
    """{normalised name: version} for every package of Colab's list that PyPI can serve."""
    versions = {}
    for line in (path or freeze_file()).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, rest = re.split(r"\s*(==|@)\s*", line, maxsplit=1)
        if normalise(name) in LEFT_OUT:
            continue
        if "==" in line:
            versions[normalise(name)] = rest
        elif match := URL_VERSION.match(rest.rsplit("/", 1)[-1]):
            versions[normalise(name)] = match["version"]
    return versions


def wanted_names() -> list[str]:
    lines = (HERE / "colab-packages.txt").read_text().splitlines()
    return [normalise(line.strip()) for line in lines if line.strip() and not line.startswith("#")]


def main(out: Path) -> None:
    versions = colab_versions()
    missing = [name for name in wanted_names() if name not in versions]
    if missing:
        sys.exit(f"colab-packages.txt names packages Colab's list does not hold: {', '.join(missing)}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "colab-pins.txt").write_text("".join(f"{name}=={versions[name]}\n" for name in wanted_names()))
    constrained = {n: v for n, v in sorted(versions.items()) if not n.startswith(NOT_CONSTRAINED)}
    (out / "colab-constraints.txt").write_text("".join(f"{n}=={v}\n" for n, v in constrained.items()))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
