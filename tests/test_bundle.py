"""What each function ships and imports: the face check only where it runs, trimmed safely."""

import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from bench.facecheck import added_files, function_excludes, vercel_excluded
from dev.samples import astronaut
from dev.server import PROJECT_ROOT

HOT = ["api/training/progress.py", "api/webhooks/replicate.py", "api/cron/reconcile.py"]
LIGHT = [
    *HOT,
    "api/training/cancel.py",
    "api/cron/reconcile.py",
    "api/studio/generate.py",
    "api/studio/generations.py",
    "api/models/index.py",  # the models and account functions (merged on main beside this)
    "api/models/[id].py",
    "api/account.py",
]
# Retry builds a new ZIP, so it checks faces again.
FACE_CHECKING = ["api/training/upload.py", "api/training/start.py", "api/training/retry.py"]
MODEL = "lib/face_model/face_detection_full_range.tflite"
IMPORTS_PROBE = """
import importlib.util, sys
sys.path.insert(0, sys.argv[1])
spec = importlib.util.spec_from_file_location("probe", sys.argv[2])
spec.loader.exec_module(importlib.util.module_from_spec(spec))
print(sorted({"numpy", "ai_edge_litert", "PIL"} & set(sys.modules)))
"""
CHECK_PROBE = """
import sys
sys.path.insert(0, sys.argv[1])
import ai_edge_litert, numpy
from PIL import Image
from lib.intake import face_check
print(ai_edge_litert.__file__, numpy.__file__)
print(face_check.check(Image.open(sys.argv[2]).convert("RGB"), 0.15))
"""


@pytest.mark.parametrize("function", HOT)
def test_the_hot_functions_import_neither_numpy_nor_litert(function):
    loaded = subprocess.run(
        [sys.executable, "-c", IMPORTS_PROBE, str(PROJECT_ROOT), str(PROJECT_ROOT / function)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    assert loaded.strip() == "[]"


@pytest.mark.parametrize("function", LIGHT)
def test_functions_without_the_face_check_ship_none_of_it(function):
    excludes = function_excludes(function)

    code = [path for path in added_files() if ".dist-info/" not in path]  # metadata stays

    assert vercel_excluded(MODEL, excludes)
    assert code and all(vercel_excluded(path, excludes) for path in code)


@pytest.mark.parametrize("function", FACE_CHECKING)
def test_the_face_checking_functions_ship_the_model_and_the_runtime(function):
    excludes = function_excludes(function)

    assert not vercel_excluded(MODEL, excludes)
    for kept in ("ai_edge_litert/libpywrap_litert_common.so", "numpy/__init__.py"):
        assert not vercel_excluded(f"_vendor/{kept}", excludes)
    assert vercel_excluded("_vendor/ai_edge_litert/libLiteRtWebGpuAccelerator.so", excludes)


def test_the_face_check_runs_on_what_the_trimmed_bundle_keeps(tmp_path):
    excludes = function_excludes("api/training/start.py")
    site = Path(str(metadata.distribution("numpy").locate_file("")))
    for path in added_files():
        relative = path.removeprefix("_vendor/")
        top = relative.split("/")[0]
        if top in ("ai_edge_litert", "numpy", "numpy.libs") and not vercel_excluded(path, excludes):
            (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(site / relative, tmp_path / relative)
    photo = tmp_path / "astronaut.png"
    astronaut().save(photo)

    output = subprocess.run(
        [sys.executable, "-c", CHECK_PROBE, str(PROJECT_ROOT), str(photo)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    ).stdout.splitlines()

    assert (
        output[0].startswith(f"{tmp_path}/ai_edge_litert/") and f" {tmp_path}/numpy/" in output[0]
    )
    assert output[1] == "FaceVerdict(faces=1, share=0.208, reason=None)"
