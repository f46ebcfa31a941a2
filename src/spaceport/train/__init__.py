"""The train stage: 3D Gaussian Splatting from a COLMAP model (gsplat on CUDA, a PyTorch rasteriser on CPU).

Modules: ``config`` (presets), ``data`` (COLMAP model and images), ``model`` (parameters, SH colour),
``losses``, ``strategy`` (the density strategies: ``densify``, 3DGS's adaptive density control, and ``mcmc``,
the fixed-budget one), ``backend`` (rasterisers), ``trainer`` (the loop), ``floaters`` (haze and floaters in
front of held-out cameras), ``checkpoint``, ``progress`` (log lines and SageMaker metric regexes), ``stage`` and
``command``.
Heavy imports (torch, pycolmap, gsplat) happen inside functions, so importing this package is cheap.
"""
