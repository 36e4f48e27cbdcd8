"""Pod volumes on the node: see .manager (lifecycle and layout), .sources (what each
kind holds) and .atomic (in-place updates through the ``..data`` symlink swap)."""

from .manager import PreparedVolume, VolumeManager, VolumeSources, volume_kind
from .sources import VolumeError

__all__ = ["PreparedVolume", "VolumeError", "VolumeManager", "VolumeSources", "volume_kind"]
