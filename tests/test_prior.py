"""The analytic Gaussian-process prior and its exact denoiser against closed forms (docs/DESIGN.md §4).

Every reference here is computed independently of models/gaussian_prior.py: the kernel by a Python
loop, the posterior mean with np.linalg.solve (the code uses an eigendecomposition), whole sampling
runs by hand-written scalar recursions per eigenvalue of K, and statistics against K itself.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler
from einops import rearrange

from models import ExactDenoiser, GaussianVideoPrior
from samplers import LongVideoSampler

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")
CLIP_SHAPE = (2, 2, 8, 3, 3)  # B, C, N, H, W of the sampler tests


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def rbf(num_frames: int, lengthscale: float) -> np.ndarray:
    """K[f, g] = exp(-(f - g)^2 / (2 l^2)), entry by entry."""
    return np.array(
        [
            [math.exp(-((f - g) ** 2) / (2.0 * lengthscale**2)) for g in range(num_frames)]
            for f in range(num_frames)
        ]
    )


def frames_last(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """(B, C, F, H, W) -> (F, B*C*H*W): one column per latent element."""
    return rearrange(np.asarray(x, dtype=np.float64), "b c f h w -> f (b c h w)")


def along_frames(matrix: np.ndarray, x: torch.Tensor) -> np.ndarray:
    """matrix applied along the frame axis of (B, C, F, H, W) latents, as a numpy array."""
    return np.einsum("fg,bcghw->bcfhw", matrix, x.numpy())


def ddim(**kwargs) -> DDIMScheduler:
    return DDIMScheduler(clip_sample=False, **kwargs)


def ddim_float64(**kwargs) -> DDIMScheduler:
    """DDIM whose alphas_cumprod are float64 tensors (same values as the stock float32 ones).

    diffusers' DDIM step takes sqrt of its float32 alphas_cumprod in float32, which puts ~1e-7 errors
    into a float64 run; with the same values held as float64 the whole loop is exact to round-off.
    """
    scheduler = ddim(**kwargs)
    scheduler.alphas_cumprod = scheduler.alphas_cumprod.to(torch.float64)
    return scheduler


def quiet_denoiser(prior: GaussianVideoPrior, scheduler) -> ExactDenoiser:
    """The prior's denoiser, asserting that building it does not warn (clip_sample is off)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return prior.denoiser(scheduler)


# --------------------------------------------------------------------------------------------------
# Kernel and eigendecomposition


@pytest.mark.parametrize(("num_frames", "lengthscale"), [(1, 3.0), (8, 3.0), (13, 0.7), (24, 5.5)])
def test_covariance_is_the_rbf_kernel(num_frames, lengthscale):
    prior = GaussianVideoPrior(num_frames=4, frame_shape=(1, 1, 1), lengthscale=lengthscale)
    np.testing.assert_allclose(prior.covariance(num_frames), rbf(num_frames, lengthscale), rtol=0, atol=1e-15)


def test_autocorrelation_closed_form():
    prior = GaussianVideoPrior(lengthscale=2.0)
    lags = [0, 1, 2, 3.5, -4]
    expected = [1.0, math.exp(-1 / 8), math.exp(-4 / 8), math.exp(-12.25 / 8), math.exp(-16 / 8)]
    np.testing.assert_allclose(prior.autocorrelation(lags), expected, rtol=1e-15, atol=0)


@pytest.mark.parametrize(("num_frames", "lengthscale"), [(8, 3.0), (16, 3.0), (24, 1.5)])
def test_eigh_reconstructs_covariance(num_frames, lengthscale):
    prior = GaussianVideoPrior(lengthscale=lengthscale)
    lam, u = prior.eigh(num_frames)
    assert lam.shape == (num_frames,) and u.shape == (num_frames, num_frames)
    assert (lam >= 0).all()
    np.testing.assert_allclose(u.T @ u, np.eye(num_frames), rtol=0, atol=1e-12)
    np.testing.assert_allclose(u @ np.diag(lam) @ u.T, rbf(num_frames, lengthscale), rtol=0, atol=1e-10)


# --------------------------------------------------------------------------------------------------
# The exact denoiser


def posterior_mean_reference(x: torch.Tensor, abar: float, lengthscale: float) -> np.ndarray:
    """sqrt(abar) K (abar K + (1 - abar) I)^-1 x along frames, with a linear solve."""
    k = rbf(x.shape[2], lengthscale)
    cols = frames_last(x)
    solved = np.linalg.solve(abar * k + (1.0 - abar) * np.eye(len(k)), cols)
    out = math.sqrt(abar) * k @ solved
    b, c, _, h, w = x.shape
    return rearrange(out, "f (b c h w) -> b c f h w", b=b, c=c, h=h, w=w)


def x0_from_output(output: np.ndarray, x: np.ndarray, abar: float, prediction_type: str) -> np.ndarray:
    """Invert x = sqrt(a) x0 + sqrt(1-a) eps, v = sqrt(a) eps - sqrt(1-a) x0 for x0."""
    a, b = math.sqrt(abar), math.sqrt(1.0 - abar)
    if prediction_type == "sample":
        return output
    if prediction_type == "epsilon":
        return (x - b * output) / a
    return a * x - b * output  # v_prediction


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
def test_denoiser_output_is_the_posterior_mean(prediction_type):
    prior = GaussianVideoPrior(num_frames=8, frame_shape=(2, 3, 3), lengthscale=3.0)
    scheduler = ddim(prediction_type=prediction_type)
    denoiser = quiet_denoiser(prior, scheduler)
    x = torch.randn(CLIP_SHAPE, generator=gen(0), dtype=torch.float64)
    for t in (0, 1, 100, 500, 999):
        abar = float(scheduler.alphas_cumprod[t])  # float32 value, exact in float64
        reference = posterior_mean_reference(x, abar, prior.lengthscale)
        np.testing.assert_allclose(
            denoiser.posterior_mean(x, abar).numpy(), reference, rtol=0, atol=1e-9, err_msg=f"t={t}"
        )
        output = denoiser(x, torch.tensor(t))
        assert output.dtype == torch.float64 and output.shape == x.shape
        x0 = x0_from_output(output.numpy(), x.numpy(), abar, prediction_type)
        np.testing.assert_allclose(x0, reference, rtol=0, atol=1e-9, err_msg=f"t={t}")


def test_euler_alpha_bar_is_the_schedulers_own_sigma():
    prior = GaussianVideoPrior(num_frames=8, frame_shape=(1, 1, 1))
    for num_steps in (10, 7):  # 7 steps: fractional timesteps (999 / 6 = 166.5 apart)
        scheduler = EulerDiscreteScheduler()
        denoiser = quiet_denoiser(prior, scheduler)
        scheduler.set_timesteps(num_steps)
        for k, t in enumerate(scheduler.timesteps):
            sigma = float(scheduler.sigmas[k])
            assert denoiser.alpha_bar(t) == pytest.approx(1.0 / (1.0 + sigma**2), rel=1e-12, abs=0)


def test_ddim_alpha_bar_is_alphas_cumprod():
    prior = GaussianVideoPrior(num_frames=8, frame_shape=(1, 1, 1))
    scheduler = ddim()
    denoiser = quiet_denoiser(prior, scheduler)
    ac = scheduler.alphas_cumprod.to(torch.float64).numpy()
    for t in range(0, 1000, 37):
        assert denoiser.alpha_bar(torch.tensor(t)) == pytest.approx(ac[t], rel=1e-12, abs=0)
    assert denoiser.alpha_bar(999) == pytest.approx(ac[999], rel=1e-12, abs=0)
    # Between integers: documented as interpolated linearly in sigma = sqrt((1 - abar) / abar).
    s = np.sqrt((1.0 - ac) / ac)
    sigma = 0.75 * s[500] + 0.25 * s[501]
    assert denoiser.alpha_bar(500.25) == pytest.approx(1.0 / (1.0 + sigma**2), rel=1e-12, abs=0)


def test_denoiser_uses_the_step_sigma_inside_the_sampler():
    """At call k of a run, abar must be 1 / (1 + sigmas[k]^2) of that step (Euler, DPM-Solver++)."""
    prior = GaussianVideoPrior(num_frames=8, frame_shape=(1, 1, 1))
    for scheduler in (EulerDiscreteScheduler(), DPMSolverMultistepScheduler()):
        denoiser = quiet_denoiser(prior, scheduler)
        seen = []

        def probe(latents, t, denoiser=denoiser, seen=seen):
            seen.append(denoiser.alpha_bar(t))
            return denoiser(latents, t)

        LongVideoSampler([], progress=False).sample(
            probe, scheduler, (1, 1, 8, 1, 1), num_clips=1, num_inference_steps=20, generator=gen(0)
        )
        sigmas = scheduler.sigmas.to(torch.float64).numpy()[:20]
        np.testing.assert_allclose(seen, 1.0 / (1.0 + sigmas**2), rtol=1e-12, atol=0)


def test_denoiser_uses_the_step_sigma_with_repeated_karras_timesteps():
    prior = GaussianVideoPrior(num_frames=8, frame_shape=(1, 1, 1))
    scheduler = DPMSolverMultistepScheduler(use_karras_sigmas=True)
    denoiser = quiet_denoiser(prior, scheduler)
    seen = []

    def probe(latents, t):
        seen.append(denoiser.alpha_bar(t))
        return denoiser(latents, t)

    LongVideoSampler([], progress=False).sample(
        probe, scheduler, (1, 1, 8, 1, 1), num_clips=1, num_inference_steps=100, generator=gen(0)
    )
    assert len(set(scheduler.timesteps.tolist())) < 100  # the premise: repeated timesteps
    sigmas = scheduler.sigmas.to(torch.float64).numpy()[:100]
    np.testing.assert_allclose(seen, 1.0 / (1.0 + sigmas**2), rtol=1e-12, atol=0)


def test_clipping_scheduler_warns():
    prior = GaussianVideoPrior(num_frames=8, frame_shape=(1, 1, 1))
    with pytest.warns(UserWarning, match="clip_sample"):
        prior.denoiser(DDIMScheduler())  # diffusers' default clip_sample=True
    with pytest.warns(UserWarning, match="thresholding"):
        prior.denoiser(DDIMScheduler(clip_sample=False, thresholding=True))
    quiet_denoiser(prior, ddim())  # no warning with clip_sample=False


# --------------------------------------------------------------------------------------------------
# Whole sampling loops against hand-computed recursions


def ddim_gains(lam: np.ndarray, num_steps: int, alphas_cumprod: np.ndarray) -> np.ndarray:
    """prod over steps of the per-eigenvalue DDIM (eta=0) gain of the exact Gaussian denoiser.

    Step from abar a to a': x0 = sqrt(a) lam / (a lam + 1 - a) x, eps = sqrt(1 - a) / (a lam + 1 - a) x,
    x' = sqrt(a') x0 + sqrt(1 - a') eps. Timesteps: 'leading' spacing, 1000 // n apart, offset 0;
    after the last step a' = final_alpha_cumprod = 1 (set_alpha_to_one=True).
    """
    stride = 1000 // num_steps
    timesteps = [stride * k for k in reversed(range(num_steps))]
    gains = np.ones_like(lam)
    for k, t in enumerate(timesteps):
        a = alphas_cumprod[t]
        a_next = alphas_cumprod[timesteps[k + 1]] if k + 1 < num_steps else 1.0
        gains *= (math.sqrt(a_next * a) * lam + math.sqrt((1 - a_next) * (1 - a))) / (a * lam + 1 - a)
    return gains


def run_sampler(prior, scheduler, num_steps, seed, num_clips=2, clip_shape=CLIP_SHAPE, dtype=torch.float64):
    """Sample with no strategy; return the LongVideo, the clips and the timesteps of every call."""
    denoiser = quiet_denoiser(prior, scheduler)
    clips, calls = [], []

    def recorded(latents, t):
        calls.append(float(t))
        return denoiser(latents, t)

    video = LongVideoSampler([], progress=False).sample(
        recorded,
        scheduler,
        clip_shape=clip_shape,
        num_clips=num_clips,
        num_inference_steps=num_steps,
        generator=gen(seed),
        dtype=dtype,
        on_clip=clips.append,
    )
    return video, clips, calls


def exact_lam_u(num_frames: int, lengthscale: float) -> tuple[np.ndarray, np.ndarray]:
    """Eigendecomposition of the hand-built kernel (not the prior's cached one)."""
    lam, u = np.linalg.eigh(rbf(num_frames, lengthscale))
    return np.clip(lam, 0.0, None), u


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
@pytest.mark.parametrize("num_steps", [10, 20])
def test_ddim_loop_matches_exact_linear_reference(prediction_type, num_steps):
    prior = GaussianVideoPrior(num_frames=8, frame_shape=(2, 3, 3), lengthscale=3.0)
    scheduler = ddim_float64(prediction_type=prediction_type)
    video, clips, calls = run_sampler(prior, scheduler, num_steps, seed=3)

    stride = 1000 // num_steps
    expected_timesteps = [float(stride * k) for k in reversed(range(num_steps))]
    assert calls == expected_timesteps * 2  # both clips, every step, in order

    lam, u = exact_lam_u(8, 3.0)
    gains = ddim_gains(lam, num_steps, DDIMScheduler().alphas_cumprod.to(torch.float64).numpy())
    transfer = u @ np.diag(gains) @ u.T
    assert [c.index for c in clips] == [0, 1] and [c.start for c in clips] == [0, 8]
    assert not torch.equal(clips[0].initial_noise, clips[1].initial_noise)
    for clip in clips:
        assert clip.latents.dtype == torch.float64 and clip.latents.shape == CLIP_SHAPE
        np.testing.assert_allclose(
            clip.latents.numpy(), along_frames(transfer, clip.initial_noise), rtol=0, atol=1e-9
        )
    assert torch.equal(video.latents, torch.cat([c.latents for c in clips], dim=2))
    assert video.clip_starts == [0, 8]


def test_ddim_loop_with_stock_float32_scheduler():
    """The stock DDIMScheduler (float32 alphas_cumprod, sqrt taken in float32 by diffusers).

    Measured error against the float64 reference: ~3e-7 (relative float32 error ~6e-8 of sqrt(abar),
    amplified by up to 1/sqrt(abar) ~ 160 near t=999 in the x0 reconstruction). Tolerance 1e-5: ~30x
    that, and still 5 orders below any wiring mistake (outputs are O(1)).
    """
    prior = GaussianVideoPrior(num_frames=8, frame_shape=(2, 3, 3), lengthscale=3.0)
    _, clips, _ = run_sampler(prior, ddim(), 20, seed=4)
    lam, u = exact_lam_u(8, 3.0)
    transfer = u @ np.diag(ddim_gains(lam, 20, DDIMScheduler().alphas_cumprod.double().numpy())) @ u.T
    for clip in clips:
        np.testing.assert_allclose(
            clip.latents.numpy(), along_frames(transfer, clip.initial_noise), rtol=0, atol=1e-5
        )


def euler_gains(lam: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Per-eigenvalue gain of the whole Euler loop from unit noise (recursion in the test below)."""
    gains = np.full_like(lam, s.max())  # linspace spacing: init_noise_sigma = sigma_max
    for k in range(len(s) - 1):
        gains *= 1.0 + (s[k + 1] - s[k]) * s[k] / (lam + s[k] ** 2)
    return gains


@pytest.mark.parametrize("num_steps", [10, 15])  # 15: fractional Euler timesteps
def test_euler_loop_matches_exact_recursion(num_steps):
    """Euler in the VE frame: x_0 = sigma_max zT (init_noise_sigma), the model sees x / sqrt(1 + s^2)
    (scale_model_input), D(x) = lam / (lam + s^2) x per eigenvalue, and
    x_{k+1} = x_k + (s_{k+1} - s_k) (x_k - D(x_k)) / s_k = x_k (1 + (s_{k+1} - s_k) s_k / (lam + s_k^2)).

    diffusers' Euler step computes in float32 whatever the latents' dtype (sample.to(torch.float32));
    measured deviation from the float64 recursion ~6e-7 (starting magnitude ~157 x float32 eps ~1e-5
    relative, shrunk by the contraction). Tolerance 1e-5 absolute on O(1) outputs.
    """
    prior = GaussianVideoPrior(num_frames=8, frame_shape=(2, 3, 3), lengthscale=3.0)
    scheduler = EulerDiscreteScheduler()
    _, clips, _ = run_sampler(prior, scheduler, num_steps, seed=5)
    s = scheduler.sigmas.to(torch.float64).numpy()  # the scheduler's own noise levels, s[-1] = 0
    assert len(s) == num_steps + 1 and s[-1] == 0.0
    lam, u = exact_lam_u(8, 3.0)
    transfer = u @ np.diag(euler_gains(lam, s)) @ u.T
    for clip in clips:
        np.testing.assert_allclose(
            clip.latents.numpy(), along_frames(transfer, clip.initial_noise), rtol=0, atol=1e-5
        )


# --------------------------------------------------------------------------------------------------
# Statistics of the output


def sample_covariance(x: torch.Tensor) -> tuple[np.ndarray, int]:
    """Temporal second moment over every latent element (the mean is known to be 0)."""
    cols = frames_last(x)
    return cols @ cols.T / cols.shape[1], cols.shape[1]


def test_euler_output_covariance_is_the_exact_one():
    """The 50-step Euler loop's output covariance is C = U diag(G^2) U^T (G from the recursion above; the
    deterministic solver under-disperses, max|C - K| = 0.067). Sampling error of an entry over n = 80000
    elements: SE <= sqrt(2 / n) = 0.005; tolerance 5 SE = 0.025. Forgetting init_noise_sigma (~157)
    or scale_model_input would be off by O(1)."""
    prior = GaussianVideoPrior(num_frames=8, frame_shape=(8, 10, 10), lengthscale=3.0)
    scheduler = EulerDiscreteScheduler()
    _, clips, _ = run_sampler(
        prior, scheduler, 50, seed=6, num_clips=1, clip_shape=(100, 8, 8, 10, 10), dtype=torch.float32
    )
    assert float(scheduler.init_noise_sigma) > 150  # the premise of this test's sensitivity
    lam, u = exact_lam_u(8, 3.0)
    exact = u @ np.diag(euler_gains(lam, scheduler.sigmas.to(torch.float64).numpy()) ** 2) @ u.T
    cov, n = sample_covariance(clips[0].latents)
    assert n == 80000
    assert np.abs(cov - exact).max() < 5 * math.sqrt(2 / n)


@pytest.mark.parametrize(
    ("make_scheduler", "tolerance"),
    [
        # DPM-Solver++ (2M), 50 steps: its discretisation bias max|C - K| is 0.0036 (computed exactly by
        # recovering the loop's linear map by least squares); sampling SE <= sqrt(2 / 80000) = 0.005;
        # 0.0036 + 5 SE = 0.029 < 0.03. A wiring mistake would be off by O(1).
        (DPMSolverMultistepScheduler, 0.03),
    ],
)
def test_solver_output_covariance_is_close_to_k(make_scheduler, tolerance):
    """Fails by O(1) if the sampler forgot init_noise_sigma (~157 for Euler) or scale_model_input.

    Every latent element is an independent draw of the 8-frame vector, so the B*C*H*W = 80000 elements
    of one clip give the sample covariance. Var(x_f x_g) = C_ff C_gg + C_fg^2 <= ~2 (Isserlis).
    """
    prior = GaussianVideoPrior(num_frames=8, frame_shape=(8, 10, 10), lengthscale=3.0)
    scheduler = make_scheduler()
    _, clips, _ = run_sampler(
        prior, scheduler, 50, seed=6, num_clips=1, clip_shape=(100, 8, 8, 10, 10), dtype=torch.float32
    )
    cov, n = sample_covariance(clips[0].latents)
    assert n == 80000
    assert np.abs(cov - rbf(8, 3.0)).max() < tolerance


def test_sample_long_covariance():
    """Empirical covariance of true 24-frame videos vs K.

    n = batch * C * H * W = 200 * 100 = 20000 independent draws; for a Gaussian with covariance K,
    Var(x_f x_g) = 1 + K_fg^2, so the standard error of entry (f, g) is sqrt((1 + K_fg^2) / n) <= 0.01.
    Tolerance: 5 standard errors per entry (chance that any of the 300 distinct entries exceeds it
    under the model ~ 300 * 6e-7 ~ 2e-4; the seed is fixed anyway).
    """
    prior = GaussianVideoPrior(num_frames=8, frame_shape=(4, 5, 5), lengthscale=3.0)
    x = prior.sample_long(24, batch=200, generator=gen(7), dtype=torch.float64)
    assert x.shape == (200, 4, 24, 5, 5) and x.dtype == torch.float64
    cov, n = sample_covariance(x)
    assert n == 20000
    k = rbf(24, 3.0)
    standard_error = np.sqrt((1.0 + k**2) / n)
    assert (np.abs(cov - k) < 5.0 * standard_error).all()


def test_sample_long_is_reproducible():
    prior = GaussianVideoPrior(num_frames=8, frame_shape=(2, 3, 3))
    a = prior.sample_long(24, batch=2, generator=gen(11))
    b = prior.sample_long(24, batch=2, generator=gen(11))
    c = prior.sample_long(24, batch=2, generator=gen(12))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert prior.sample(batch=3, generator=gen(0)).shape == (3, 2, 8, 3, 3)


# --------------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"num_frames": 0}, "num_frames"),
        ({"lengthscale": 0.0}, "lengthscale"),
        ({"lengthscale": -1.0}, "lengthscale"),
        ({"frame_shape": (4, 8)}, "frame_shape"),
        ({"frame_shape": (4, 0, 8)}, "frame_shape"),
    ],
)
def test_prior_rejects_bad_parameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        GaussianVideoPrior(**kwargs)


def test_denoiser_rejects_unknown_prediction_type():
    prior = GaussianVideoPrior(num_frames=8, frame_shape=(1, 1, 1))
    with pytest.raises(ValueError, match="prediction_type"):
        prior.denoiser(ddim(prediction_type="flow"))


def test_sample_long_requires_a_generator():
    prior = GaussianVideoPrior(num_frames=8, frame_shape=(1, 1, 1))
    with pytest.raises(TypeError, match="generator"):
        prior.sample_long(8)
    with pytest.raises(TypeError, match="generator"):
        prior.sample_long(8, generator=0)
    with pytest.raises(ValueError, match="num_frames"):
        prior.sample_long(0, generator=gen(0))


def test_a_scheduler_of_unknown_kind_is_refused():
    from diffusers import EDMEulerScheduler

    with pytest.raises(ValueError, match=r"scheduler kind of EDMEulerScheduler cannot be determined"):
        GaussianVideoPrior().denoiser(EDMEulerScheduler())


def test_the_oracle_continuation_is_the_exact_conditional():
    # A well-conditioned kernel (l = 1, 3 past frames): the draw x_n = M x_p + R z must have the Schur
    # complement's mean operator K_np K_pp^-1 and covariance K_nn - K_np K_pp^-1 K_pn (explicit inverse).
    from models.gaussian_prior import _continuation

    k = rbf(5, 1.0)
    k_pp, k_np, k_nn = k[:3, :3], k[3:, :3], k[3:, 3:]
    mean, root = _continuation(1.0, 3, 2)
    np.testing.assert_allclose(mean, k_np @ np.linalg.inv(k_pp), rtol=0, atol=1e-10)
    np.testing.assert_allclose(root @ root.T, k_nn - k_np @ np.linalg.inv(k_pp) @ k_np.T, rtol=0, atol=1e-10)


def test_an_oracle_video_has_the_process_covariance():
    # 16 true frames, then 16 drawn from the conditional (l = 3, whose K_pp is nearly singular): the
    # 32 x 32 empirical covariance over n = 16384 series matches K within 6 standard errors (sqrt(2/n))
    prior = GaussianVideoPrior(num_frames=16, frame_shape=(64, 8, 8), lengthscale=3.0)
    g = gen(0)
    previous = prior.sample_long(16, 4, g, torch.float64)
    video = torch.cat([previous, prior.sample_continuation(previous, 16, g)], dim=2)
    x = frames_last(video)
    empirical = x @ x.T / x.shape[1]
    assert np.abs(empirical - rbf(32, 3.0)).max() < 6 * math.sqrt(2 / x.shape[1])
