"""Up-front argument checks: every message names the parameter, its value and the allowed range."""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch


def check_real(name: str, value: float, low: float, high: float = math.inf) -> float:
    """Return `value` as a float if it is a real number in [low, high]; TypeError/ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number in [{low}, {high}]; got {value!r}")
    if math.isnan(value) or not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}]; got {value!r}")
    return float(value)


def check_range(name: str, value: tuple[float, float], low: float, high: float) -> tuple[float, float]:
    """Return `value` if it is a (low, high) pair with low <= value[0] <= value[1] <= high."""
    if not isinstance(value, tuple) or len(value) != 2:
        raise ValueError(f"{name} must be a (low, high) tuple within [{low}, {high}]; got {value!r}")
    check_real(f"{name}[0]", value[0], low, high)
    check_real(f"{name}[1]", value[1], value[0], high)
    return value


def check_int(name: str, value: int, low: int, high: float = math.inf) -> int:
    """Return `value` if it is an integer in [low, high]; TypeError/ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer in [{low}, {high}]; got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}]; got {value!r}")
    return int(value)


FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_dtype(name: str, value: torch.dtype) -> torch.dtype:
    """Return `value` if it is a real floating torch dtype; TypeError (no dtype) or ValueError otherwise."""
    allowed = f"allowed: {', '.join(map(str, FLOAT_DTYPES))}"
    if not isinstance(value, torch.dtype):
        raise TypeError(f"{name} must be a floating torch.dtype ({allowed}); got {value!r}")
    if value not in FLOAT_DTYPES:
        raise ValueError(f"{name} must be a floating torch.dtype ({allowed}); got {value!r}")
    return value


def check_device(name: str, value: torch.device | str) -> torch.device:
    """`value` as a torch.device if it names a device this machine has; TypeError/ValueError otherwise."""
    if not isinstance(value, (str, torch.device)):
        raise TypeError(f"{name} must be a torch.device, a device name such as 'cpu' or 'cuda:0', or None; "
                        f"got {value!r}")  # fmt: skip
    allowed = f"one of this machine's devices ({', '.join(available_devices())})"
    try:
        device = torch.device(value)
    except (RuntimeError, ValueError) as error:
        raise ValueError(f"{name} must be {allowed}; got {value!r} (not a device name: {error})") from None
    problem = _device_problem(device)
    if problem is not None:
        raise ValueError(f"{name} must be {allowed}; got {value!r} ({problem})")
    return device


def available_devices() -> list[str]:
    """'cpu', then 'cuda:k' for every CUDA device and 'mps' where they are available."""
    cuda = [f"cuda:{k}" for k in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return ["cpu", *cuda, *(["mps"] if torch.backends.mps.is_available() else [])]


def _device_problem(device: torch.device) -> str | None:
    """Why tensors cannot be made on `device` here; None where they can."""
    if device.type == "cpu":
        return None  # torch accepts any index for the CPU ("cpu:1" is the CPU)
    if device.type == "meta":
        return "meta tensors hold no values"
    backend = torch.backends.mps if device.type == "mps" else getattr(torch, device.type, None)
    is_available = getattr(backend, "is_available", None)
    if not callable(is_available) or not is_available():
        return f"{device.type} is not available on this machine"
    count = getattr(backend, "device_count", None)
    if device.index is not None and callable(count) and device.index >= count():
        return f"this machine has {count()} {device.type} device(s), numbered from 0"
    return None


def check_generator(generator: object) -> None:
    """TypeError unless `generator` is a torch.Generator: the kit's only source of randomness."""
    import torch

    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator (no global RNG); got {generator!r}")
