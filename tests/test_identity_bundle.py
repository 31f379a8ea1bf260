"""The same-person check's models and dlib ship only with the functions that may run it."""

import pytest

from bench.facecheck import function_excludes, vercel_excluded

MODELS = [
    "lib/identity_model/shape_predictor_5_face_landmarks.dat",
    "lib/identity_model/dlib_face_recognition_resnet_model_v1.dat",
]
DLIB = ["_vendor/dlib/__init__.py", "_vendor/_dlib_pybind11.cpython-312-x86_64-linux-gnu.so"]
WITHOUT = [
    "api/training/progress.py",
    "api/training/cancel.py",
    "api/webhooks/replicate.py",
    "api/cron/reconcile.py",
    "api/studio/generate.py",
    "api/models/index.py",
    "api/account.py",
]


@pytest.mark.parametrize("function", WITHOUT)
def test_functions_that_never_compare_faces_ship_neither_dlib_nor_its_models(function):
    excludes = function_excludes(function)

    assert all(vercel_excluded(path, excludes) for path in MODELS + DLIB)


@pytest.mark.parametrize("function", ["api/training/start.py", "api/training/retry.py"])
def test_start_and_retry_ship_dlib_and_both_models(function):
    excludes = function_excludes(function)

    assert not any(vercel_excluded(path, excludes) for path in MODELS + DLIB)
