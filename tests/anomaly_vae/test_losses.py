"""The tabular likelihoods against closed forms computed independently (mpmath at 50 digits, scipy)."""

import mpmath
import numpy as np
import pytest
import torch
from scipy.stats import norm

from anomaly_vae.tabular.losses import clip_log_slope, discretized_gaussian_nll, gaussian_nll
from anomaly_vae.tabular.scaling import SOFT_CLIP, soft_clip


@pytest.mark.parametrize("x", [-3.0, -0.4, 0.0, 0.2, 2.5, 4.9])
@pytest.mark.parametrize(
    ("mean", "sigma", "half"), [(0.0, 1.0, 0.5), (0.3, 0.05, 0.5), (-2.0, 0.2, 0.01), (9.0, 0.5, 1.0)]
)
def test_discretized_gaussian_is_the_probability_of_the_cell(x, mean, sigma, half):
    if x - half > mean:  # in the upper tail both CDFs are 1 to any precision: the mirror image has the mass
        x, mean = -x, -mean
    with mpmath.workdps(50):
        mass = mpmath.ncdf(x + half, mean, sigma) - mpmath.ncdf(x - half, mean, sigma)
        expected = float(-mpmath.log(mass))
    got = discretized_gaussian_nll(*(torch.tensor([v], dtype=torch.float32) for v in (x, mean, sigma, half)))
    assert got.item() == pytest.approx(expected, rel=1e-4, abs=1e-4)


def test_a_cell_has_probability_at_most_one_where_a_density_has_no_bound():
    x = torch.zeros(1)
    for sigma in (1.0, 0.1, 0.01, 0.001):
        s = torch.tensor([sigma])
        assert discretized_gaussian_nll(x, x, s, torch.tensor([0.5])).item() >= 0.0
    assert gaussian_nll(x, x, torch.tensor([0.001])).item() < -5.0  # the density rewards collapsing onto a value


def test_a_narrow_cell_is_the_density_times_its_width():
    x, mean, sigma, half = torch.tensor([0.7]), torch.tensor([0.2]), torch.tensor([0.5]), 1e-3
    cell = discretized_gaussian_nll(x, mean, sigma, torch.tensor([half]))
    assert cell.item() == pytest.approx(gaussian_nll(x, mean, sigma).item() - np.log(2 * half), abs=1e-3)


def test_cells_shrink_with_the_soft_clip_slope_beyond_it():
    x = torch.tensor([SOFT_CLIP + 1.0])
    cell = discretized_gaussian_nll(x, x, torch.tensor([1.0]), torch.tensor([0.01]))
    width = 2 * 0.01 * np.exp(-1.0)  # the encoding's slope at SOFT_CLIP + 1 is e^-1
    assert cell.item() == pytest.approx(-np.log(width * norm.pdf(0.0)), abs=1e-3)


def test_the_discretized_likelihood_has_gradients_in_the_tails():
    mean = torch.tensor([0.0, 30.0, -30.0], requires_grad=True)
    discretized_gaussian_nll(torch.zeros(3), mean, torch.ones(3), torch.full((3,), 0.5)).sum().backward()
    assert torch.isfinite(mean.grad).all() and (mean.grad[1] > 0) and (mean.grad[2] < 0)


@pytest.mark.parametrize("u", [-40.0, -6.0, -2.0, 0.0, 4.9, 5.5, 12.0, 1e4])
def test_clip_log_slope_is_minus_log_of_the_encodings_derivative(u):
    h = 1e-4 * max(1.0, abs(u))
    slope = (soft_clip(np.array([u + h])) - soft_clip(np.array([u - h])))[0] / (2 * h)
    got = clip_log_slope(torch.tensor(soft_clip(np.array([u])), dtype=torch.float64)).item()
    assert got == pytest.approx(-np.log(slope), abs=1e-5)
