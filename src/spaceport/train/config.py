"""Training configuration: one dataclass, three presets, and the rule for applying hyperparameters.

Presets depend on the device because the same schedule cannot serve both: with gsplat on a GPU the
3DGS schedule (7k / 30k iterations at full resolution) is cheap, while the pure-PyTorch CPU rasteriser
manages a few iterations per second on two cores, so CPU presets train at reduced resolution, for fewer
iterations, with a compressed densification schedule and a smaller Gaussian budget.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from spaceport.contract import StageError

PRESETS = ("fast", "default", "quality")
STRATEGIES = ("adc", "mcmc")
# The steps a preset places within its run; an ``iterations`` override stretches them with it.
SCHEDULE_FIELDS = ("densify_from", "densify_until", "opacity_reset_every", "sh_degree_interval", "lr_means_decay_steps")
DEVICES = ("auto", "cpu", "cuda")
BACKGROUND_MODES = ("sky", "random", "fixed")


@dataclass
class TrainConfig:
    """Every knob of a training run; a preset fills it, hyperparameters override single fields.

    Learning rates follow the 3DGS paper (Kerbl et al. 2023); ``lr_means`` is multiplied by the scene
    extent so it is scale-free. Gradient thresholds are in NDC-like units (pixel gradient times half
    the image size) so they do not depend on the training resolution.
    """

    preset: str = "default"
    device: str = "auto"
    iterations: int = 3000
    # Longest image side used for training, in pixels; 0 keeps the cameras' resolution.
    resolution: int = 0
    sh_degree: int = 3
    sh_degree_interval: int = 1000
    # Cap the SH degree by the training photos' count (SH_DEGREE_BY_PHOTOS): few photos cannot pin down
    # view-dependent colour, and what they leave free shows from new viewpoints.
    sh_degree_by_photos: bool = False
    max_gaussians: int = 1_000_000
    # What rays that pass every Gaussian see (spaceport.train.background): "sky", a learned function of direction
    # baked into the export as a far shell; "random", a new colour each step; "fixed", ``background`` throughout.
    background_mode: str = "sky"
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)
    sky_sh_degree: int = 3
    lr_sky: float = 0.01
    # Weight of the accumulated opacity's binary entropy (spaceport.train.losses.alpha_entropy); 0: off.
    alpha_entropy_weight: float = 0.0
    # Near-camera rules (spaceport.train.near_field), at each refinement round: no Gaussian within this fraction of
    # the depth of the nearest surface a training camera saw of it (0: off), none in fewer than this many training
    # frustums (0: off). Chosen by measurement (README, "Development runs").
    near_camera_fraction: float = 0.5
    min_training_views: int = 3
    # A depth term at the SfM points each photo observed (spaceport.train.depth_prior): its weight (0: off) and how
    # often it runs (it renders the step's view a second time).
    depth_loss_weight: float = 0.0
    depth_loss_every: int = 4
    # Weight of the transparency at the pixels of the SfM points each photo observed (0: off); every step, cheap.
    surface_opacity_weight: float = 0.0
    # Per-photo affine colour transforms between render and loss, started from EXIF exposure
    # (spaceport.train.appearance).
    appearance: bool = False
    lr_appearance: float = 0.005
    ssim_lambda: float = 0.2
    lr_means: float = 1.6e-4
    lr_means_final: float = 1.6e-6
    # Steps over which lr_means decays to lr_means_final; 0: the run's own length. 3DGS decays over 30k steps
    # whatever the run's length, so its 7k-step run ends at about a third of the decay.
    lr_means_decay_steps: int = 0
    lr_sh0: float = 2.5e-3
    lr_shN: float = 2.5e-3 / 20  # noqa: N815 - named after the shN parameter, like GaussianCloud.shN
    lr_opacity: float = 0.05
    lr_scales: float = 5e-3
    lr_quats: float = 1e-3
    # "adc" (3DGS's clone / split / prune) or "mcmc" (fixed budget, 3DGS-MCMC); see spaceport.train.strategy.
    strategy: str = "adc"
    densify_from: int = 500
    densify_until: int = 15_000
    densify_every: int = 100
    densify_grad_threshold: float = 2e-4
    # Densify by the sum of absolute per-pixel gradients (gsplat's absgrad), against this threshold instead.
    absgrad: bool = False
    densify_absgrad_threshold: float = 8e-4
    # A Gaussian whose largest axis is below this fraction of the scene extent is cloned, else split.
    percent_dense: float = 0.01
    opacity_reset_every: int = 3000
    prune_opacity: float = 0.005
    # After the first opacity reset, prune Gaussians larger than this in the world (fraction of extent; when
    # prune_world_size is on) or on screen (fraction of the longest image side; when prune_screen_size is on).
    # adc only. Measured: the two together collapsed held-out PSNR after each reset; gsplat keeps only the first.
    prune_world_size: bool = False
    prune_screen_size: bool = False
    prune_world_scale: float = 0.1
    prune_screen_fraction: float = 0.15
    # mcmc: growth per refinement round (fraction of the current count), Langevin noise scale (times the
    # position learning rate), and the L1 weights on opacity and on scale.
    mcmc_growth: float = 0.05
    mcmc_noise: float = 5e5
    mcmc_opacity_reg: float = 0.01
    mcmc_scale_reg: float = 0.01
    initial_opacity: float = 0.1
    checkpoint_every: int = 1000
    log_every: int = 100
    seed: int = 0
    extra: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _cuda_preset(name: str) -> dict[str, Any]:
    """GPU presets: the 3DGS schedule; ``resolution`` 1600 is 3DGS's own cap for large photos."""
    common: dict[str, Any] = {"resolution": 1600, "max_gaussians": 3_000_000}
    if name == "fast":
        return common | {"iterations": 2000, "densify_from": 300, "densify_until": 1500, "opacity_reset_every": 1000,
                         "sh_degree_interval": 500, "checkpoint_every": 500, "max_gaussians": 1_000_000}  # fmt: skip
    if name == "default":
        return common | {"iterations": 7000, "densify_until": 5000, "opacity_reset_every": 3000,
                         "lr_means_decay_steps": 30_000}  # fmt: skip
    return common | {"iterations": 30_000, "densify_until": 15_000, "checkpoint_every": 2000}


def _cpu_preset(name: str) -> dict[str, Any]:
    """CPU presets, sized for two cores and our numba rasteriser.

    ``fast`` trains the 320x240 sample scene in under a minute (CI), ``default`` reaches about 31 dB held-out
    PSNR on it in a few minutes, ``quality`` spends longer at up to 640 px.
    Low SH degrees on CPU also keep the compress stage's k-means of the SH palette cheap.
    """
    # Short runs need livelier colours and positions than 3DGS's 30k-step rates, and a higher gradient
    # threshold: at low resolution every Gaussian's residual is a few pixels wide, so 3DGS's 2e-4 would
    # double the set at every round.
    short: dict[str, Any] = {"lr_sh0": 0.01, "lr_shN": 0.0005, "lr_means": 4e-4, "lr_means_final": 4e-6,
                             "densify_grad_threshold": 8e-4}  # fmt: skip
    if name == "fast":
        return short | {"iterations": 300, "resolution": 160, "sh_degree": 1, "sh_degree_interval": 150,
                        "max_gaussians": 10_000, "densify_from": 60, "densify_until": 210, "densify_every": 30,
                        "mcmc_growth": 0.3, "opacity_reset_every": 10_000, "checkpoint_every": 100,
                        "log_every": 25}  # fmt: skip
    if name == "default":
        # Measured on the 320x240 sample (two cores, one other busy process): 3000 steps at full size reach
        # 31.6 dB held-out PSNR in 400 s. Photos are trained at up to 480 px on the longest side, which keeps a
        # step under ~0.3 s; evaluation still renders at the cameras' full resolution.
        return short | {"iterations": 3000, "resolution": 480, "sh_degree": 3, "sh_degree_interval": 500,
                        "max_gaussians": 80_000, "densify_from": 100, "densify_until": 2200, "densify_every": 100,
                        "densify_grad_threshold": 4e-4, "lr_sh0": 0.005, "lr_shN": 0.00025,
                        "opacity_reset_every": 1000, "checkpoint_every": 1000, "log_every": 100}  # fmt: skip
    return short | {"iterations": 4000, "resolution": 640, "sh_degree": 3, "sh_degree_interval": 800,
            "max_gaussians": 150_000, "densify_from": 200, "densify_until": 3000, "densify_every": 100,
            "densify_grad_threshold": 4e-4, "opacity_reset_every": 1200, "checkpoint_every": 500,
            "log_every": 100, "lr_means_final": 1.6e-5}  # fmt: skip


# (fewer training photos than this, highest SH degree), in order.
SH_DEGREE_BY_PHOTOS = ((12, 1), (36, 2))


def fitted_to_capture(config: TrainConfig, training_photos: int) -> TrainConfig:
    """``config`` with what depends on the capture applied: the SH degree cap of ``sh_degree_by_photos``."""
    if not config.sh_degree_by_photos:
        return config
    for below, degree in SH_DEGREE_BY_PHOTOS:
        if training_photos < below:
            return dataclasses.replace(config, sh_degree=min(config.sh_degree, degree))
    return config


def scaled_size(width: int, height: int, resolution: int) -> tuple[int, int]:
    """The size whose longest side is at most ``resolution`` (0 = unchanged), keeping the aspect ratio."""
    if resolution <= 0 or max(width, height) <= resolution:
        return width, height
    factor = resolution / max(width, height)
    return max(1, round(width * factor)), max(1, round(height * factor))


def preset_config(preset: str, device: str) -> TrainConfig:
    """The preset's configuration for a resolved device (``cpu`` or ``cuda``)."""
    if preset not in PRESETS:
        raise StageError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    values = _cuda_preset(preset) if device == "cuda" else _cpu_preset(preset)
    return TrainConfig(preset=preset, device=device, **values)


def _parse_field(config: TrainConfig, name: str, text: str) -> Any:
    current = getattr(config, name)
    try:
        if isinstance(current, bool):
            return text.strip().lower() in ("1", "true", "yes", "on")
        if isinstance(current, int):
            return int(float(text))
        if isinstance(current, float):
            return float(text)
        if isinstance(current, tuple):
            values = tuple(float(part) for part in text.strip("[]() ").replace(",", " ").split())
            if len(values) != len(current):
                raise ValueError(f"expected {len(current)} numbers")
            return values
    except ValueError as error:
        raise StageError(f"hyperparameter {name}={text!r} is not valid: {error}") from error
    return text


def apply_overrides(config: TrainConfig, overrides: dict[str, str]) -> TrainConfig:
    """Apply string hyperparameters (SageMaker passes every value as a string) to single fields.

    A new ``iterations`` also stretches the preset's schedule (``SCHEDULE_FIELDS``) unless those are given too.

    Unknown names are kept in ``extra`` rather than rejected: SageMaker and the launcher add their own
    (``sagemaker_*``), and an old job definition should not break a newer container.
    """
    updates: dict[str, Any] = {}
    extra = dict(config.extra)
    names = {f.name for f in dataclasses.fields(TrainConfig)} - {"preset", "device", "extra"}
    for name, text in overrides.items():
        if name in names:
            updates[name] = _parse_field(config, name, text)
        elif name not in ("preset", "device"):
            extra[name] = text
    result = dataclasses.replace(config, **(_rescaled_schedule(config, updates) | updates), extra=extra)
    validate(result)
    return result


def _rescaled_schedule(config: TrainConfig, updates: dict[str, Any]) -> dict[str, int]:
    """The preset's schedule stretched to a new ``iterations``, for every step not given explicitly.

    A preset's steps are tuned to its length: kept as they are, a shorter run would still be densifying (and
    resetting opacities) when it ends, and a longer one would stop densifying early.
    """
    iterations = updates.get("iterations")
    if iterations is None or iterations <= 0 or config.iterations <= 0:
        return {}
    factor = iterations / config.iterations
    # A step of 0 means "not scheduled" (lr_means_decay_steps: the run's length) and stays so.
    return {name: max(1, round(getattr(config, name) * factor)) for name in SCHEDULE_FIELDS
            if name not in updates and getattr(config, name) > 0}  # fmt: skip


def validate(config: TrainConfig) -> None:
    """Reject values that would fail later in a less readable way."""
    if config.iterations < 0:
        raise StageError(f"iterations must be >= 0, got {config.iterations}")
    if not 0 <= config.sh_degree <= 3:
        raise StageError(f"sh_degree must be between 0 and 3, got {config.sh_degree}")
    if config.max_gaussians < 1:
        raise StageError(f"max_gaussians must be positive, got {config.max_gaussians}")
    if config.resolution < 0:
        raise StageError(f"resolution must be >= 0 (0 = full), got {config.resolution}")
    if config.strategy not in STRATEGIES:
        raise StageError(f"unknown strategy {config.strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if config.background_mode not in BACKGROUND_MODES:
        raise StageError(f"unknown background_mode {config.background_mode!r}; choose one of "
                         f"{', '.join(BACKGROUND_MODES)}")  # fmt: skip
    if not 0 <= config.sky_sh_degree <= 3:
        raise StageError(f"sky_sh_degree must be between 0 and 3, got {config.sky_sh_degree}")
    if config.near_camera_fraction < 0 or config.min_training_views < 0:
        raise StageError("near_camera_fraction and min_training_views must be >= 0 (0 turns a rule off)")
    if not all(0.0 <= value <= 1.0 for value in config.background):
        raise StageError(f"background must be three values in [0, 1], got {config.background}")


def resolve_device(requested: str) -> str:
    """``auto`` means CUDA when present; asking for CUDA without one is the user's error."""
    import torch

    if requested not in DEVICES:
        raise StageError(f"unknown device {requested!r}; choose one of {', '.join(DEVICES)}")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise StageError("device=cuda was requested but no CUDA GPU is available")
    return requested


def build_config(hyperparameters: dict[str, str]) -> TrainConfig:
    """Preset for the resolved device, then every other hyperparameter on top."""
    device = resolve_device(hyperparameters.get("device", "auto"))
    config = preset_config(hyperparameters.get("preset", "default"), device)
    return apply_overrides(config, hyperparameters)
