"""Headless MuJoCo (Meta-World) next to a torch reward model: the GL backend, the import order, cheap renders."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings

import gymnasium as gym


def setup_headless_mujoco(backend: str = "osmesa") -> str:
    """Prepare headless MuJoCo rendering (Meta-World) in a process that also runs a torch reward model.

    Sets ``MUJOCO_GL`` / ``PYOPENGL_PLATFORM`` to ``backend`` unless already set, and returns the backend in
    effect. With OSMesa, Debian's libOSMesa loads the system libLLVM, whose symbols clash with the LLVM
    bundled in triton (imported by torch, e.g. via torchvision/transformers video processing): importing
    triton *after* mujoco crashes the process (SIGSEGV). So this imports triton first when it is installed.
    Call it before importing mujoco / metaworld.
    """
    os.environ.setdefault("MUJOCO_GL", backend)
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
    gl = os.environ["MUJOCO_GL"]
    if gl == "osmesa" and "triton" not in sys.modules:
        if "mujoco" in sys.modules:
            warnings.warn(
                "mujoco was imported before setup_headless_mujoco(): with MUJOCO_GL=osmesa a later import of "
                "triton (torch) may crash the process; call setup_headless_mujoco() before importing mujoco",
                stacklevel=2,
            )
        else:
            # CPU-only torch builds ship no triton: then nothing can clash
            with contextlib.suppress(ImportError):
                import triton  # noqa: F401
    return gl


def lighten_mujoco_rendering(env: gym.Env, shadowsize: int = 1024, offsamples: int = 0) -> None:
    """Cheaper offscreen renders of a MuJoCo env under software GL: a smaller shadow map, no multisampling.

    Call before the first ``render()``. Meta-World asks for a 4096 px shadow map and 4x multisampling; on
    OSMesa that dominates the cost of a frame (see docs/rl.md for timings), with no visible change at the
    sizes a reward model sees.
    """
    model = getattr(env.unwrapped, "model", None)
    if model is None or not hasattr(model, "vis"):
        raise TypeError(f"{type(env.unwrapped).__name__} is not a MuJoCo env (no .model.vis)")
    model.vis.quality.shadowsize = int(shadowsize)
    model.vis.quality.offsamples = int(offsamples)


def release_mujoco_rendering(env: gym.Env) -> None:
    """Close a MuJoCo env's renderer and drop its viewers now (a no-op for other envs).

    gymnasium's ``OffScreenViewer.__del__`` frees its GL context again even after ``close()``; left for the
    interpreter's exit, that runs while mujoco's OSMesa module is half torn down and prints
    ``TypeError: 'NoneType' object is not callable``. Dropping the viewers here runs it while Python is up.
    :meth:`roboreward.rl.RewardWrapper.close` calls this.
    """
    renderer = getattr(env.unwrapped, "mujoco_renderer", None)
    viewers = getattr(renderer, "_viewers", None)
    if not isinstance(viewers, dict):
        return
    renderer.close()
    viewers.clear()
    renderer.viewer = None
