"""The distances import without the optional dependencies; what needs one names its extra."""

import subprocess
import sys

import pytest

HIDE = "import sys\nfor name in {names}: sys.modules[name] = None  # an import of it now fails\n"


def run_without(names, code):
    return subprocess.run(
        [sys.executable, "-c", HIDE.format(names=names) + code], capture_output=True, text=True, timeout=120
    )


def test_the_distances_need_none_of_the_extras():
    hidden = ["matplotlib", "PIL", "tqdm"]  # (scipy stays: POT itself imports it)
    done = run_without(hidden, "import divergences\nprint(float(divergences.emd([0.0, 1.0], [2.0])))")
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) == 1.5


@pytest.mark.parametrize(
    "hidden, code, extra",
    [
        (["tqdm"], "import trainers.train", "train"),
        (["PIL"], "import trainers.grid", "train"),
        (["matplotlib"], "import trainers.report", "train"),
        (["matplotlib"], "from divergences.probes import parallel_lines\nparallel_lines().plot()", "probes"),
    ],
)
def test_a_missing_extra_is_named(hidden, code, extra):
    done = run_without(hidden, code)
    assert done.returncode != 0
    assert f"pip install 'divergences[{extra}]'" in done.stderr.splitlines()[-1]
