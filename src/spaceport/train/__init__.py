"""The train stage: 3D Gaussian Splatting from a COLMAP model (gsplat on CUDA, a PyTorch rasteriser on CPU).

Modules: ``config`` (presets), ``data`` (COLMAP model and images), ``model`` (parameters, SH colour),
``losses``, ``densify`` (adaptive density control), ``backend`` (rasterisers), ``trainer`` (the loop),
``checkpoint``, ``progress`` (log lines and SageMaker metric regexes), ``stage`` and ``command``.
Heavy imports (torch, pycolmap, gsplat) happen inside functions, so importing this package is cheap.
"""
