"""The example and benchmark scripts as modules, for tests that call their functions in-process."""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_example(name):
    """``examples/<name>.py``, imported as a module of that name."""
    return _load(ROOT / "examples", name)


def load_benchmark(name):
    """``benchmarks/<name>.py``, imported as a module of that name (its folder on the path, for its helpers)."""
    if str(ROOT / "benchmarks") not in sys.path:
        sys.path.append(str(ROOT / "benchmarks"))
    return _load(ROOT / "benchmarks", name)


def _load(folder, name):
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
