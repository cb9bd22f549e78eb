"""The image compose builds (Dockerfile) holds everything its entry points need. No Docker engine runs
here, so the test lays out the files the Dockerfile's COPY lines put in /app (less what .dockerignore
keeps out) and imports every entry point and every module of the project from that tree alone, in a
Python that does not see this checkout."""

from __future__ import annotations

import fnmatch
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENTRY_POINTS = ("worker", "starter", "webhook", "provider_webhook", "codec_server", "certification", "settings")
"""What the image runs (compose's commands, the `engagement` CLI); demo.py runs from a checkout (it uses
the test peers) and is left out."""
PACKAGES = ("domain", "emails", "adapters", "workflows", "activities", "cli")


def copy_lines(dockerfile: str) -> list[tuple[list[str], str]]:
    """The (sources, destination) of each COPY from the build context."""
    copies = []
    for line in dockerfile.splitlines():
        words = line.split()
        if not words or words[0] != "COPY":
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        assert not any(w.startswith("--from") for w in words), "a COPY from another stage"
        copies.append((args[:-1], args[-1]))
    return copies


def ignored(relative: str, patterns: list[str]) -> bool:
    parts = relative.split("/")
    return any(
        fnmatch.fnmatch(relative, p) or any(fnmatch.fnmatch(part, p.removeprefix("**/")) for part in parts)
        for p in patterns
    )


def build_tree(target: Path) -> Path:
    """The files of /app as the Dockerfile's COPY lines lay them out."""
    patterns = [
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and line[0] != "#"
    ]
    app = target / "app"
    app.mkdir()
    for sources, destination in copy_lines((ROOT / "Dockerfile").read_text()):
        for source in sources:
            matches = sorted(ROOT.glob(source.rstrip("/"))) if any(c in source for c in "*?[") else [ROOT / source]
            assert matches and all(m.exists() for m in matches), f"COPY {source}: nothing in the build context"
            for match in matches:
                into = app / destination if destination not in ("./", ".") else app
                if match.is_dir():
                    for file in match.rglob("*"):
                        relative = file.relative_to(ROOT).as_posix()
                        if file.is_file() and not ignored(relative, patterns):
                            out = into / file.relative_to(match)
                            out.parent.mkdir(parents=True, exist_ok=True)
                            shutil.copy2(file, out)
                elif not ignored(match.relative_to(ROOT).as_posix(), patterns):
                    into.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(match, into / match.name)
    return app


def modules_of(app: Path) -> list[str]:
    names = list(ENTRY_POINTS)
    for package in PACKAGES:
        for file in sorted((app / package).rglob("*.py")):
            parts = file.relative_to(app).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


IMPORT_ALL = """
import importlib, pathlib, sys
tree = pathlib.Path(sys.argv[1]).resolve()
count = int(sys.argv[2])
site_dirs, names = sys.argv[3 : 3 + count], sys.argv[3 + count :]
sys.path[:0] = [str(tree)]
sys.path += site_dirs
for name in names:
    module = importlib.import_module(name)
    where = pathlib.Path(module.__file__).resolve()
    assert where.is_relative_to(tree), f"{name} came from {where}, not the image"
from domain.screening import DEFAULT_JURISDICTIONS_FILE, load_jurisdictions
load_jurisdictions(DEFAULT_JURISDICTIONS_FILE)
from adapters.db import PROJECT_ROOT
assert PROJECT_ROOT.resolve() == tree, PROJECT_ROOT
assert (tree / "alembic.ini").exists() and (tree / "migrations" / "env.py").exists(), "migrations left out"
print(len(names))
"""


def test_every_entry_point_and_module_imports_from_the_image_alone(tmp_path: Path) -> None:
    app = build_tree(tmp_path)
    names = modules_of(app)
    assert {"worker", "emails.render", "cli.run", "domain.screening"} <= set(names)
    site_dirs = site.getsitepackages()
    # -S: no .pth file runs, so the checkout's editable install is not on the path; the modules must
    # come from the tree, and the script checks that each one did.
    done = subprocess.run(
        [sys.executable, "-S", "-c", IMPORT_ALL, str(app), str(len(site_dirs)), *site_dirs, *names],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.split()[-1]) == len(names)


def test_a_package_left_out_of_the_image_is_caught(tmp_path: Path) -> None:
    app = build_tree(tmp_path)
    shutil.rmtree(app / "emails")
    site_dirs = site.getsitepackages()
    done = subprocess.run(
        [sys.executable, "-S", "-c", IMPORT_ALL, str(app), str(len(site_dirs)), *site_dirs, "worker"],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "emails" in done.stderr


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_is_installed_by_pip_too(package: str) -> None:
    """`pip install .` in the image installs the packages pyproject.toml names (the `engagement` script
    runs from there)."""
    text = (ROOT / "pyproject.toml").read_text()
    assert f'"{package}*"' in text
