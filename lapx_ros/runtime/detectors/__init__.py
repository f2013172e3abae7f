"""The built-in person detectors of ``mode: detector``, by the name the ``detector``
parameter gives them. Adding one: a file in this package with a class that follows
``base.PersonDetector``, and its row in ``DETECTORS``.

Detectors are slow next to the pose network's crops, so the pipeline runs them on a
thread of their own (``BackgroundDetector``) every few frames and follows people by their
keypoints in between.
"""
from __future__ import annotations

from lapx_ros.runtime.detectors.background import BackgroundDetector
from lapx_ros.runtime.detectors.base import DetectorModelError, DetectorSettings, PersonDetector
from lapx_ros.runtime.detectors.hog import HogPersonDetector
from lapx_ros.runtime.detectors.movenet import MoveNetDetector

DETECTORS: dict[str, type[PersonDetector]] = {
    "movenet": MoveNetDetector,
    "hog": HogPersonDetector,
}
# What runs when the detector asked for cannot be loaded: it needs no file.
FALLBACK = "hog"

__all__ = ["DETECTORS", "FALLBACK", "BackgroundDetector", "DetectorSettings", "PersonDetector",
           "create_person_detector", "detector_class", "fallback_text"]


def detector_class(name: str) -> type[PersonDetector]:
    """The detector of ``name``; ValueError naming the choices for any other name."""
    try:
        return DETECTORS[name]
    except KeyError:
        raise ValueError(f"detector must be one of {list(DETECTORS)}, got {name!r}") from None


def create_person_detector(settings: DetectorSettings, log=None) -> tuple[PersonDetector, str]:
    """(detector, problem): the detector asked for, or the FALLBACK with the reason why the
    one asked for could not be loaded ("" when nothing went wrong). Never raises for a bad
    file: detector mode stays usable, and the caller reports the problem."""
    asked = detector_class(settings.kind)
    try:
        return asked.from_settings(settings, log), ""
    except DetectorModelError as exc:
        return DETECTORS[FALLBACK].from_settings(settings, log), str(exc)


def fallback_text(settings: DetectorSettings) -> str:
    """What runs instead of the detector of ``settings`` when it cannot be loaded, in
    words ("HOG instead of MoveNet")."""
    return f"{DETECTORS[FALLBACK].label} instead of {detector_class(settings.kind).label}"
