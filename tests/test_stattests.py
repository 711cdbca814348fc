"""The stat-test registry: one contract for every test, scipy as oracle, and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial import distance

from churnops.monitor.binning import binned_shares, sorted_histogram
from churnops.monitor.stattests import (
    REGISTRY,
    TestResult,
    default_test_name,
    get_stattest,
    is_drift,
    wasserstein_1d,
)

RNG = np.random.default_rng(2024)
NUMERICAL_TESTS = sorted(n for n, s in REGISTRY.items() if "numerical" in s.column_types)
CATEGORICAL_TESTS = sorted(n for n, s in REGISTRY.items() if "categorical" in s.column_types)


def run(name, reference, current, column_type):
    spec = REGISTRY[name]
    params = {"column_type": column_type} if "column_type" in spec.params else {}
    if name == "TVD":
        params["iterations"] = 200
    return spec, spec.func(reference, current, **params)


def sample(name, column_type, shift=0.0, n=400):
    if column_type == "numerical":
        return np.sort(RNG.normal(shift, 1.0, n))
    if name == "fisher_exact" or name == "z":
        return (RNG.random(n) < 0.3 + shift).astype(np.int64)
    p = np.array([0.4, 0.3, 0.2, 0.1]) + np.array([-1, 0, 0, 1]) * shift
    return RNG.choice(4, n, p=p / p.sum()).astype(np.int64)


@pytest.mark.parametrize(
    "name, column_type",
    [(n, "numerical") for n in NUMERICAL_TESTS] + [(n, "categorical") for n in CATEGORICAL_TESTS],
)
def test_contract(name, column_type):
    """Every registered test: identical samples -> no drift; a big shift -> drift; result types."""
    spec = REGISTRY[name]
    assert spec.name == name and spec.kind in ("p_value", "distance")
    assert spec.default_threshold > 0 and spec.description
    same = sample(name, column_type)
    spec, result = run(name, same, same.copy(), column_type)
    assert isinstance(result, TestResult) and isinstance(result.statistic, float)
    if spec.kind == "p_value":
        assert isinstance(result.p_value, float) and 0.0 <= result.p_value <= 1.0
    else:
        assert result.p_value is None and result.statistic >= 0
    assert not is_drift(result, spec, spec.default_threshold), f"{name} flags identical samples"

    shifted = sample(name, column_type, shift=0.25 if column_type == "categorical" else 1.5)
    _, result = run(name, same, shifted, column_type)
    if name == "mannwhitney":  # one-sided "less", as Evidently: only an upward shift is flagged
        assert is_drift(result, spec, spec.default_threshold)
    else:
        assert is_drift(result, spec, spec.default_threshold), f"{name} misses a large shift"


def test_threshold_direction_lives_in_is_drift():
    p_test, distance_test = get_stattest("ks"), get_stattest("psi")
    assert is_drift(TestResult(0.3, 0.01), p_test, 0.05)
    assert not is_drift(TestResult(0.3, 0.05), p_test, 0.05)  # p == threshold: not drift
    assert is_drift(TestResult(0.1), distance_test, 0.1)  # distance == threshold: drift
    assert not is_drift(TestResult(0.09), distance_test, 0.1)
    assert not is_drift(TestResult(math.nan, math.nan), p_test, 0.05)  # never a NaN verdict
    assert not is_drift(TestResult(math.nan), distance_test, 0.1)


def test_unknown_test_lists_the_registry():
    with pytest.raises(KeyError) as info:
        get_stattest("nope")
    assert ", ".join(sorted(REGISTRY)) in str(info.value)


def test_aliases_for_evidently_names():
    assert get_stattest("ed").name == "energy_distance"
    assert get_stattest("es").name == "epps_singleton"


def test_default_selection_follows_evidently():
    assert default_test_name("numerical", 1000, 6) == "ks"
    assert default_test_name("numerical", 1000, 5) == "chisquare"
    assert default_test_name("numerical", 1000, 2) == "z"
    assert default_test_name("categorical", 1000, 3) == "chisquare"
    assert default_test_name("categorical", 1000, 2) == "z"
    assert default_test_name("numerical", 1001, 6) == "wasserstein"
    assert default_test_name("numerical", 1001, 5) == "jensenshannon"
    assert default_test_name("categorical", 1001, 2) == "jensenshannon"


# --- scipy as oracle -------------------------------------------------------------------------


@pytest.mark.parametrize("n, m", [(5, 7), (1000, 1000), (20_000, 10_000), (300_000, 170_000), (1, 400_000)])
def test_wasserstein_equals_scipy(n, m):
    # above 2 x W1_PIECE_VALUES values the merge runs piece by piece
    u = np.sort(RNG.lognormal(0, 1, n))
    v = np.sort(np.round(RNG.lognormal(0.1, 1, m), 1))  # ties within and across samples
    assert wasserstein_1d(u, v) == pytest.approx(stats.wasserstein_distance(u, v), rel=1e-12)
    norm = max(float(np.std(u)), 0.001)
    assert get_stattest("wasserstein").func(u, v).statistic == pytest.approx(
        stats.wasserstein_distance(u, v) / norm, rel=1e-12
    )


def test_wasserstein_norm_floor_for_constant_reference():
    result = get_stattest("wasserstein").func(np.ones(10), np.full(10, 1.5))
    assert result.statistic == pytest.approx(0.5 / 0.001)


def test_a_near_zero_jensen_shannon_distance_is_scipys_to_the_last_digits():
    # shares that almost agree: the divergence cancels, so only scipy's order of operations
    # gives scipy's (and Evidently's) value; this pair once differed by 9e-9 relative
    from churnops.monitor.stattests import jensen_shannon_distance

    for ref, cur in [((510_084, 489_916), (510_030, 489_970)), ((3, 5, 7, 11), (3, 5, 7, 11.0001))]:
        p, q = np.array(ref) / sum(ref), np.array(cur) / sum(cur)
        expected = distance.jensenshannon(p, q)
        assert jensen_shannon_distance(p, q) == pytest.approx(expected, rel=1e-12, abs=0)


def test_rel_entr_is_scipys_bit_for_bit():
    """The Python ``rel_entr`` (used up to REL_ENTR_IN_PYTHON bins, so that a default run never
    imports scipy.special) returns exactly scipy's doubles: near equality, at the factor-2
    boundaries, for ratios that under- or overflow, zeros, negatives, infinities and NaN."""
    from scipy.special import rel_entr as scipy_rel_entr

    from churnops.monitor.stattests import REL_ENTR_IN_PYTHON, rel_entr

    rng = np.random.default_rng(7)
    tiny, huge = np.finfo(float).tiny, np.finfo(float).max
    special = [0.0, -0.0, -1.0, 1.0, 0.5, 2.0, tiny, tiny / 4, huge, np.inf, np.nan, 1e-300, 1e300]
    x = np.array([a for a in special for _ in special])
    y = np.array([b for _ in special for b in special])
    near = rng.random(2000)
    x = np.concatenate([x, near, near * 2, near, rng.random(2000) ** 8, near])
    y = np.concatenate([y, near * (1 + rng.normal(0, 1e-9, 2000)), near, near * 2, rng.random(2000), near * 0.5])
    step = min(REL_ENTR_IN_PYTHON, 4000)
    for start in range(0, x.size, step):
        part = slice(start, start + step)
        np.testing.assert_array_equal(rel_entr(x[part], y[part]), scipy_rel_entr(x[part], y[part]))


def test_binned_tests_equal_their_formulas():
    ref = np.array([0, 0, 0, 1, 1, 2])
    cur = np.array([0, 1, 1, 2, 2, 3])
    p = np.array([3, 2, 1, 0]) / 6
    q = np.array([1, 2, 2, 1]) / 6
    assert get_stattest("jensenshannon").func(ref, cur).statistic == pytest.approx(distance.jensenshannon(p, q))
    filled_p = np.where(p == 0, 1e-4, p)
    assert get_stattest("psi").func(ref, cur).statistic == pytest.approx(np.sum((filled_p - q) * np.log(filled_p / q)))
    assert get_stattest("kl_div").func(ref, cur).statistic == pytest.approx(stats.entropy(filled_p, q))
    assert get_stattest("hellinger").func(ref, cur).statistic == pytest.approx(math.sqrt(1 - np.sum(np.sqrt(p * q))))
    assert get_stattest("TVD").func(ref, cur, iterations=50).statistic == pytest.approx(0.5 * np.abs(p - q).sum())


def test_chisquare_and_g_test_use_reference_proportions():
    ref = np.array([0] * 60 + [1] * 40)
    cur = np.array([0] * 20 + [1] * 30)
    expected = np.array([60, 40]) * 50 / 100
    assert get_stattest("chisquare").func(ref, cur).p_value == pytest.approx(stats.chisquare([20, 30], expected).pvalue)
    assert get_stattest("g_test").func(ref, cur).p_value == pytest.approx(
        stats.power_divergence([20, 30], expected, lambda_="log-likelihood").pvalue
    )


def test_category_only_in_current_gives_infinite_chisquare():
    result = get_stattest("chisquare").func(np.array([0, 0, 1]), np.array([0, 1, 2]))
    assert result.statistic == math.inf and result.p_value == 0.0


def test_quantile_binning_honours_n_bins():
    ref = np.sort(RNG.normal(size=5_000))
    for n_bins in (5, 10, 40):
        r, c = binned_shares(ref, ref + 0.1, "numerical", "quantile", n_bins, fill_zeroes=False)
        assert len(r) == n_bins
        assert r == pytest.approx(np.full(n_bins, 1 / n_bins), abs=2e-3)
        assert c.sum() == pytest.approx(1.0)


def test_evidently_binning_ignores_n_bins():
    ref = np.sort(RNG.normal(size=5_000))
    a = binned_shares(ref, ref + 0.1, "numerical", "evidently", 5)
    b = binned_shares(ref, ref + 0.1, "numerical", "evidently", 40)
    assert np.array_equal(a[0], b[0])
    assert len(a[0]) == int(np.ceil(np.log2(10_000) + 1))  # Sturges on both samples


# --- properties --------------------------------------------------------------------------------

floats = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
samples = st.lists(floats, min_size=2, max_size=60).map(lambda v: np.sort(np.array(v)))
codes = st.lists(st.integers(0, 5), min_size=2, max_size=60).map(np.array)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(-20, 20), min_size=1, max_size=80),
    st.lists(st.integers(-25, 25), min_size=2, max_size=8, unique=True),
    st.booleans(),
)
def test_counting_sorted_values_on_bins_is_numpys_histogram(values, edges, weighted):
    """Values on the edges, below, above and repeated: the same counts as np.histogram's."""
    values, edges = np.sort(np.array(values, dtype=np.float64) / 2), np.sort(np.array(edges, dtype=np.float64) / 2)
    weights = np.arange(1, values.size + 1, dtype=np.int64) if weighted else None
    expected = np.histogram(values, edges, weights=weights)[0]
    assert sorted_histogram(values, edges, weights).tolist() == expected.tolist()


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(st.integers(-(2**60), 2**60).map(float), st.sampled_from([0.0, -0.0, 1.5, 1e300])), max_size=60),
    st.booleans(),
)
def test_polars_sorts_and_counts_as_numpy_does(values, large):
    """Whichever library sorts or counts (polars for large arrays), the numbers are NumPy's, and
    a zero is always ``0.0`` (polars and NumPy order ``-0.0`` and ``0.0`` differently)."""
    from churnops.monitor import prepare

    array = np.array(values, dtype=np.float64)
    counts = np.arange(1, array.size + 1, dtype=np.int64)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(prepare, "WITH_POLARS_FROM", 0 if large else 10**9)
        ordered = prepare.sorted_copy(array)
        distinct, distinct_counts = prepare.distinct_counts(array)
        keys, sums = prepare.summed_counts(array, counts)
    assert ordered.tolist() == np.sort(array).tolist() and ordered.flags.writeable
    expected = np.unique(array, return_counts=True)
    assert distinct.tolist() == expected[0].tolist() and distinct_counts.tolist() == expected[1].tolist()
    assert keys.tolist() == expected[0].tolist()
    assert sums.tolist() == [int(counts[array == key].sum()) for key in expected[0]]
    for result in (ordered, distinct, keys):  # a zero is 0.0 whichever library sorted, whatever the row order
        assert not np.signbit(result[result == 0]).any()


@settings(max_examples=60, deadline=None)
@given(samples)
def test_a_sample_against_itself(values):
    for name in ("wasserstein", "energy_distance", "jensenshannon", "psi", "kl_div", "hellinger"):
        _, result = run(name, values, values.copy(), "numerical")
        # Hellinger is sqrt(1 - BC): a rounding error of 1e-16 in BC shows as 1e-8.
        assert result.statistic == pytest.approx(0.0, abs=1e-7 if name == "hellinger" else 1e-9), name
    assert get_stattest("ks").func(values, values).p_value == pytest.approx(1.0)


@settings(max_examples=60, deadline=None)
@given(codes)
def test_categorical_sample_against_itself(values):
    for name in ("jensenshannon", "psi", "kl_div", "hellinger"):
        _, result = run(name, values, values.copy(), "categorical")
        assert result.statistic == pytest.approx(0.0, abs=1e-7 if name == "hellinger" else 1e-9), name
    assert get_stattest("chisquare").func(values, values).p_value == pytest.approx(1.0)


@settings(max_examples=60, deadline=None)
@given(samples, samples)
def test_symmetric_tests_are_symmetric(a, b):
    assert wasserstein_1d(a, b) == pytest.approx(wasserstein_1d(b, a), rel=1e-9, abs=1e-9)
    assert get_stattest("ks").func(a, b).statistic == pytest.approx(get_stattest("ks").func(b, a).statistic)
    assert get_stattest("energy_distance").func(a, b).statistic == pytest.approx(
        get_stattest("energy_distance").func(b, a).statistic, rel=1e-9, abs=1e-9
    )


@settings(max_examples=60, deadline=None)
@given(samples, st.floats(0.0, 100.0), st.floats(0.0, 100.0))
def test_a_bigger_shift_never_lowers_a_distance(values, small, extra):
    big = small + extra
    for name in ("wasserstein", "energy_distance"):
        spec = get_stattest(name)
        d_small = spec.func(values, values + small).statistic
        d_big = spec.func(values, values + big).statistic
        assert d_big >= d_small - 1e-9 * max(1.0, d_small), name
    ks_small = get_stattest("ks").func(values, values + small).statistic
    ks_big = get_stattest("ks").func(values, values + big).statistic
    assert ks_big >= ks_small - 1e-12


@pytest.mark.parametrize("piece", [2, 7, 64])
def test_wasserstein_piecewise_merge_equals_scipy(monkeypatch, piece):
    # tiny pieces: cuts fall on tied values, on empty pieces, on the weighted and raw forms
    from churnops.monitor import stattests as module

    monkeypatch.setattr(module, "W1_PIECE_VALUES", piece)
    rng = np.random.default_rng(piece)
    u = np.sort(rng.integers(0, 60, 900).astype(float))
    v = np.sort(np.round(rng.lognormal(3.0, 0.6, 700)))
    expected = stats.wasserstein_distance(u, v)
    assert wasserstein_1d(u, v) == pytest.approx(expected, rel=1e-12)
    assert wasserstein_1d(v, u) == pytest.approx(expected, rel=1e-12)
    uu, uw = np.unique(u, return_counts=True)
    vv, vw = np.unique(v, return_counts=True)
    assert wasserstein_1d(uu, vv, uw, vw) == pytest.approx(expected, rel=1e-12)
    assert wasserstein_1d(uu, v, uw, None) == pytest.approx(expected, rel=1e-12)
    assert wasserstein_1d(u, u) == 0.0


@pytest.mark.parametrize("kind", ["continuous", "integers", "rounded"])
def test_ks_beyond_the_exact_sizes_is_scipys_to_the_bit(kind):
    """Above 10,000 values the statistic comes from one merge of the sorted samples (no second
    sort): the same statistic and p-value as scipy's ks_2samp, sorted or not, values + counts or not."""
    from churnops.monitor.stattests import ks

    rng = np.random.default_rng(["continuous", "integers", "rounded"].index(kind))
    for n, m in ((10_001, 25_000), (40_000, 12_345)):
        a, b = _two_samples(rng, kind, n, m, shift=0.02)
        expected = stats.ks_2samp(a, b)
        (va, ca), (vb, cb) = np.unique(a, return_counts=True), np.unique(b, return_counts=True)
        for got in (ks(a, b), ks(np.sort(a), np.sort(b)), ks(va, vb, ca, cb)):
            assert got.statistic == expected.statistic
            assert got.p_value == expected.pvalue


def _two_samples(rng, kind: str, n: int, m: int, shift: float, scale: float = 1.0):
    """A reference of ``n`` values and a slightly different batch of ``m``: continuous, whole
    numbers (ties), or rounded to two decimals (ties among floats)."""
    if kind == "continuous":
        return rng.normal(size=n), rng.normal(shift, scale, m)
    if kind == "integers":
        return rng.integers(0, 50, n).astype(float), rng.integers(0, 51, m).astype(float)
    return np.round(rng.exponential(size=n), 2), np.round(rng.exponential(1.02, size=m), 2)


@pytest.mark.parametrize("kind", ["continuous", "integers", "rounded"])
def test_wasserstein_and_ks_together_equal_each_alone(kind):
    """The calibrated verdict's one merge for both tests: each result is the test's own, to the
    bit, small or large, values or values with counts, sorted or not."""
    from churnops.monitor.stattests import ks, wasserstein, wasserstein_and_ks

    rng = np.random.default_rng(10 + ["continuous", "integers", "rounded"].index(kind))
    for n, m in ((300, 450), (10_000, 10_000), (10_001, 25_000), (60_000, 3)):
        a, b = _two_samples(rng, kind, n, m, shift=0.03, scale=1.1)
        (va, ca), (vb, cb) = np.unique(a, return_counts=True), np.unique(b, return_counts=True)
        for args in ((np.sort(a), np.sort(b)), (a, b), (va, vb, ca, cb), (va, np.sort(b), ca, None)):
            together = wasserstein_and_ks(*args)
            assert together == (wasserstein(*args), ks(*args))


@settings(max_examples=60, deadline=None)
@given(samples, samples, st.integers(1, 3))
def test_wasserstein_and_ks_together_equal_each_alone_anywhere(a, b, repeat):
    from churnops.monitor.stattests import ks, wasserstein, wasserstein_and_ks

    a, b = np.sort(np.tile(a, 200 * repeat)), np.sort(np.tile(b, 100))  # beyond the exact sizes too
    for args in ((a, b), (a[:50], b[:70])):
        assert wasserstein_and_ks(*args) == (wasserstein(*args), ks(*args))


def test_hellinger_of_values_a_unit_in_the_last_place_apart_is_zero():
    close = np.array([-1e6, np.nextafter(-1e6, 0.0)])
    assert REGISTRY["hellinger"].func(close, close[::-1].copy(), column_type="numerical").statistic == 0.0
