"""MCMC samplers over inputs x: Langevin/SGLD (exact and decoupled), MALA, replay buffer, inits.

Every sampler takes an energy callable ``energy_fn(x) -> [B]`` and initial chains ``x0`` and
returns a :class:`SampleResult` that states the temperature the chain targets.
"""

from .buffer import ReplayBuffer
from .inits import (
    ClassGaussianInit,
    GaussianInit,
    InitDistribution,
    UniformInit,
    available_inits,
    build_init,
    register_init,
)
from .langevin import (
    BATCHNORM_POLICIES,
    ChainTrace,
    EnergyFn,
    LangevinConfig,
    LangevinSampler,
    ModelEnergyFn,
    SampleResult,
    SamplerDivergenceError,
    bn_policy,
    conditional_energy_fn,
    langevin_sample,
    marginal_energy_fn,
)
from .mala import MALASampler, mala_sample

__all__ = [
    "BATCHNORM_POLICIES",
    "ChainTrace",
    "ClassGaussianInit",
    "EnergyFn",
    "GaussianInit",
    "InitDistribution",
    "LangevinConfig",
    "LangevinSampler",
    "MALASampler",
    "ModelEnergyFn",
    "ReplayBuffer",
    "SampleResult",
    "SamplerDivergenceError",
    "UniformInit",
    "available_inits",
    "bn_policy",
    "build_init",
    "conditional_energy_fn",
    "langevin_sample",
    "mala_sample",
    "marginal_energy_fn",
    "register_init",
]
