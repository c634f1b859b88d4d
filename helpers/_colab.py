"""Google Colab: where the project is published, and installing it into a Colab runtime.

`REPOSITORY_URL` is the one place the address lives; each notebook's bootstrap cell and the
README's badges repeat it, and `tests/test_notebooks.py` checks that they agree.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPOSITORY_URL = "https://github.com/clip-image-search/clip-elasticsearch-image-search"
COLAB_PROJECT_DIR = "/content/clip-elasticsearch-image-search"
# Colab ships torch with its own CUDA libraries: reinstalling them would cost minutes.
COLAB_KEEPS = ("torch", "torchvision", "nvidia-nvjitlink", "cuda-pathfinder")


def badge_url(notebook: str) -> str:
    owner_repo = REPOSITORY_URL.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{owner_repo}/blob/main/notebooks/{notebook}"


def colab_requirements(requirements: Path) -> list[str]:
    """The pinned requirements, less the torch pair Colab already has."""
    lines = [line.split("#")[0].strip() for line in requirements.read_text().splitlines()]
    return [line for line in lines if line and line.split("==")[0] not in COLAB_KEEPS]


def install_requirements(root: Path = Path(COLAB_PROJECT_DIR)) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", *colab_requirements(root / "requirements.txt")], check=True
    )
