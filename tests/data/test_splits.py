"""Split, subset and label-noise semantics: exact counts, stratification, determinism, nesting."""

from __future__ import annotations

import pytest
import torch

from nas.data.splits import add_label_noise, apportion, split_counts, stratified_pick, subset, train_val_split

# unbalanced classes: 50, 30, 15, 5 images
LABELS = torch.cat([torch.full((n,), c) for c, n in enumerate((50, 30, 15, 5))])[
    torch.randperm(100, generator=torch.Generator().manual_seed(0))
]


@pytest.mark.parametrize("total", [0, 1, 7, 33, 50, 99, 100])
def test_apportion_is_exact_and_proportional(total):
    counts = torch.tensor([50, 30, 15, 5])
    quota = apportion(counts, total)
    assert int(quota.sum()) == total
    assert bool((quota <= counts).all())
    ideal = counts.double() * total / 100
    assert bool(((quota - ideal).abs() < 1).all()), (quota, ideal)


def test_stratified_pick_counts_per_class_and_seeds():
    gen = torch.Generator().manual_seed(0)
    mask = stratified_pick(LABELS, 20, 4, gen)
    assert int(mask.sum()) == 20
    assert torch.bincount(LABELS[mask], minlength=4).tolist() == [10, 6, 3, 1]
    again = stratified_pick(LABELS, 20, 4, torch.Generator().manual_seed(0))
    other = stratified_pick(LABELS, 20, 4, torch.Generator().manual_seed(1))
    assert torch.equal(mask, again)
    assert not torch.equal(mask, other)


def test_train_val_split_is_a_stratified_partition():
    train, val = train_val_split(LABELS, 10, 4, seed=3)
    assert len(val) == 10 and len(train) == 90
    assert sorted(torch.cat([train, val]).tolist()) == list(range(100))
    # quotas 5, 3, 1.5, 0.5: the tied remainder goes to the lower class
    assert torch.bincount(LABELS[val], minlength=4).tolist() == [5, 3, 2, 0]
    assert torch.equal(val, train_val_split(LABELS, 10, 4, seed=3)[1])
    assert not torch.equal(val, train_val_split(LABELS, 10, 4, seed=4)[1])
    assert bool((train[1:] > train[:-1]).all()), "indices come back sorted"


def test_split_counts():
    assert split_counts(100, val_fraction=0.1, val_size=None) == 10
    assert split_counts(100, val_fraction=0.1, val_size=25) == 25  # val_size wins
    assert split_counts(100, val_fraction=0.0, val_size=None) == 0
    with pytest.raises(ValueError, match="no training images"):
        split_counts(100, val_fraction=0.1, val_size=100)


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.35, 0.5, 0.999])
def test_subset_exact_count_and_stratified(fraction):
    keep = subset(LABELS, fraction, 4, seed=0)
    assert len(keep) == max(1, round(fraction * 100))
    per_class = torch.bincount(LABELS[keep], minlength=4).double()
    ideal = torch.tensor([50, 30, 15, 5]).double() * len(keep) / 100
    assert bool(((per_class - ideal).abs() < 1).all())
    assert torch.equal(keep, subset(LABELS, fraction, 4, seed=0))


def test_subset_full_and_nested():
    assert torch.equal(subset(LABELS, 1.0, 4, seed=0), torch.arange(100))
    small = set(subset(LABELS, 0.2, 4, seed=5).tolist())
    large = set(subset(LABELS, 0.6, 4, seed=5).tolist())
    assert small <= large, "with one seed a smaller subset lies inside a larger one"


def test_subset_too_small_is_an_error():
    with pytest.raises(ValueError, match="keeps no images"):
        subset(LABELS, 0.001, 4, seed=0)


@pytest.mark.parametrize("noise", [0.0, 0.05, 0.33, 0.5, 0.99])
def test_label_noise_exact_count_always_different(noise):
    noisy, mask = add_label_noise(LABELS, noise, 4, seed=0)
    assert int(mask.sum()) == round(noise * 100)
    assert bool((noisy[mask] != LABELS[mask]).all()), "a noisy label is always a different class"
    assert torch.equal(noisy[~mask], LABELS[~mask])
    assert bool(((noisy >= 0) & (noisy < 4)).all())
    again, mask2 = add_label_noise(LABELS, noise, 4, seed=0)
    assert torch.equal(noisy, again) and torch.equal(mask, mask2)


def test_label_noise_seeds_and_nesting():
    _, m1 = add_label_noise(LABELS, 0.2, 4, seed=0)
    _, m2 = add_label_noise(LABELS, 0.2, 4, seed=1)
    assert not torch.equal(m1, m2)
    low, lo_mask = add_label_noise(LABELS, 0.1, 4, seed=0)
    high, hi_mask = add_label_noise(LABELS, 0.3, 4, seed=0)
    assert bool(hi_mask[lo_mask].all()), "the images noisy at 10 % are noisy at 30 % too"
    assert torch.equal(low[lo_mask], high[lo_mask]), "with the same wrong label"


def test_label_noise_replacement_is_uniform_over_other_classes():
    labels = torch.zeros(30000, dtype=torch.int64)
    noisy, mask = add_label_noise(labels, 0.9, 4, seed=0)
    counts = torch.bincount(noisy[mask], minlength=4)
    assert counts[0] == 0
    assert bool(((counts[1:].double() / int(mask.sum()) - 1 / 3).abs() < 0.02).all())
