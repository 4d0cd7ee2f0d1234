"""RoboCache: robot-learning data operators for NVIDIA DALI.

``import robocache`` loads the DALI plugin once; afterwards ``nvidia.dali.fn.robocache.*`` exists::

    import robocache
    from nvidia.dali import fn, pipeline_def

    @pipeline_def(batch_size=64, num_threads=4, device_id=0)
    def pipe():
        states, ts = fn.external_source(source=reader, num_outputs=2, batch=True)
        return fn.robocache.resample(states.gpu(), ts, target_rate=50.0)

The GPU backend compiles its CUDA kernels at first use with NVRTC. NVRTC is found, in order, at
``$ROBOCACHE_NVRTC`` (a path to ``libnvrtc.so.13``), in the ``nvidia-cuda-nvrtc`` wheel, under
``$CUDA_HOME/lib64`` or ``/usr/local/cuda/lib64``; it is preloaded here so the plugin's loader finds
it. CPU pipelines need neither a GPU nor NVRTC.
"""

from __future__ import annotations

import ctypes
import glob
import os
from pathlib import Path

__version__ = "0.1.0"
__all__ = ["plugin_path", "nvrtc_path", "load_plugin", "RobotDataLoader", "DatasetSpec", "__version__"]

_PLUGIN_NAME = "libdali_robocache.so"
_loaded_plugin: str | None = None
_nvrtc: str | None = None


def plugin_path() -> str:
    """Returns the path of ``libdali_robocache.so``.

    Returns:
        ``$ROBOCACHE_PLUGIN`` when set, else the library installed inside this package.

    Raises:
        FileNotFoundError: when no plugin library is found (the package was not built).
    """
    env = os.environ.get("ROBOCACHE_PLUGIN")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve().parent
    candidates += [here / _PLUGIN_NAME, here / "lib" / _PLUGIN_NAME]
    # A source checkout put first on sys.path (benchmarks, tests) has no built library: use the
    # installed package's copy, built from the same sources by `pip install .`.
    import sys

    candidates += [Path(p) / "robocache" / _PLUGIN_NAME for p in sys.path if p and Path(p).resolve() != here.parent]
    for c in candidates:
        if c.is_file():
            return str(c)
    raise FileNotFoundError(
        "robocache: the DALI plugin library libdali_robocache.so was not found (looked at "
        + ", ".join(str(c) for c in candidates)
        + "); install the package with `pip install --no-build-isolation .` or set ROBOCACHE_PLUGIN"
    )


def _nvrtc_candidates() -> list[Path]:
    out: list[Path] = []
    env = os.environ.get("ROBOCACHE_NVRTC")
    if env:
        out.append(Path(env))
    try:
        import nvidia  # namespace package of the CUDA wheels

        for d in getattr(nvidia, "__path__", []):
            out += [Path(p) for p in sorted(glob.glob(os.path.join(d, "cu13", "lib", "libnvrtc.so.13")))]
            out += [Path(p) for p in sorted(glob.glob(os.path.join(d, "cuda_nvrtc", "lib", "libnvrtc.so.13")))]
    except ImportError:
        pass
    for root in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if root:
            out.append(Path(root) / "lib64" / "libnvrtc.so.13")
    return out


def nvrtc_path() -> str | None:
    """Returns the NVRTC library preloaded for the GPU backend, or ``None`` when none was found."""
    return _nvrtc


def _preload_nvrtc() -> None:
    """Preloads NVRTC and its builtins (NVRTC dlopens ``libnvrtc-builtins.so.13.0`` by bare name)."""
    global _nvrtc
    for lib in _nvrtc_candidates():
        if not lib.is_file():
            continue
        try:
            for b in sorted(lib.parent.glob("libnvrtc-builtins.so.13*")):
                if ".alt." not in b.name:
                    ctypes.CDLL(str(b), mode=ctypes.RTLD_GLOBAL)
            ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
        except OSError:
            continue
        _nvrtc = str(lib)
        return


def load_plugin() -> str:
    """Loads the plugin into DALI (once per process) and returns its path.

    Returns:
        The path of the loaded library.

    Raises:
        FileNotFoundError: when the library is missing.
        RuntimeError: when DALI cannot load it.
    """
    global _loaded_plugin
    if _loaded_plugin is None:
        from nvidia.dali import plugin_manager

        _preload_nvrtc()
        path = plugin_path()
        plugin_manager.load_library(path)
        _loaded_plugin = path
    return _loaded_plugin


load_plugin()


def __getattr__(name: str):
    """Lazy imports: ``robocache.RobotDataLoader`` (and ``DatasetSpec``) load the loader module, and
    with it PyTorch, only when first used, so ``import robocache`` stays light."""
    if name in ("RobotDataLoader", "DatasetSpec"):
        from . import loader

        return getattr(loader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
