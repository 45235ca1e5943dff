"""Seeded, stratified index selection: validation split, training subset, and label noise.

All selection works on label tensors only (CPU int64), so it is cheap and identical on every machine. A
per-class quota is apportioned by largest remainders, so the total is exactly the requested count and every
class keeps its share to within one image. Within a class, images are taken in the order of one seeded
permutation: with the same seed a smaller request picks (almost always) a subset of a larger one, and the
noisy images at a lower noise level are a subset of those at a higher one.
"""

from __future__ import annotations

import numpy as np
import torch

# Stream tags: each use of randomness gets its own generator, so changing one option never reshuffles another.
SPLIT, SUBSET, NOISE, ORDER, AUGMENT = 1, 2, 3, 4, 5


def derive_seed(*keys: int) -> int:
    """A well-mixed 63-bit seed from a tuple of non-negative ints (e.g. seed, epoch, stream tag)."""
    state = np.random.SeedSequence([int(k) & 0xFFFFFFFFFFFFFFFF for k in keys]).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & 0x7FFFFFFFFFFFFFFF


def generator(*keys: int) -> torch.Generator:
    """A CPU generator seeded from `keys` (CPU so the same seed gives the same numbers on any device)."""
    return torch.Generator().manual_seed(derive_seed(*keys))


def apportion(counts: torch.Tensor, total: int) -> torch.Tensor:
    """Split `total` over classes in proportion to `counts` (largest remainders; ties to the lower class)."""
    counts = counts.to(torch.int64)
    n = int(counts.sum())
    if not 0 <= total <= n:
        raise ValueError(f"cannot take {total} of {n} items")
    if n == 0:
        return torch.zeros_like(counts)
    exact = counts.to(torch.float64) * total / n
    quota = exact.floor().to(torch.int64)
    left = total - int(quota.sum())
    if left:
        remainder = exact - quota
        # stable sort on -remainder: equal remainders go to the lower class index first
        order = torch.sort(-remainder, stable=True).indices
        quota[order[:left]] += 1
    return torch.minimum(quota, counts)


def stratified_pick(labels: torch.Tensor, count: int, num_classes: int, gen: torch.Generator) -> torch.Tensor:
    """A boolean mask choosing exactly `count` of `labels`, stratified by class, seeded by `gen`."""
    labels = labels.to(torch.int64).cpu()
    n = labels.numel()
    class_counts = torch.bincount(labels, minlength=num_classes)
    quota = apportion(class_counts, count)
    perm = torch.randperm(n, generator=gen)
    # group the permutation by class (stable sort keeps the random order inside each class)
    # (numpy's single-threaded stable sort: a few ms where torch's threaded sort stalls on a busy machine)
    order = perm[torch.from_numpy(np.argsort(labels[perm].numpy(), kind="stable"))]
    sorted_labels = labels[order]
    starts = torch.cumsum(class_counts, 0) - class_counts
    rank = torch.arange(n) - starts[sorted_labels]
    mask = torch.zeros(n, dtype=torch.bool)
    mask[order[rank < quota[sorted_labels]]] = True
    return mask


def split_counts(n: int, *, val_fraction: float, val_size: int | None) -> int:
    """The number of validation images for a training set of `n` (val_size wins over val_fraction)."""
    n_val = int(val_size) if val_size is not None else int(round(val_fraction * n))
    if n_val >= n:
        raise ValueError(
            f"the validation split ({n_val} images) would leave no training images out of {n}; "
            "lower data.val_size or data.val_fraction"
        )
    return n_val


def train_val_split(
    labels: torch.Tensor, n_val: int, num_classes: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, val indices), ascending, with a stratified validation split of `n_val` images."""
    val = stratified_pick(labels, n_val, num_classes, generator(seed, SPLIT))
    return torch.nonzero(~val).flatten(), torch.nonzero(val).flatten()


def subset(labels: torch.Tensor, fraction: float, num_classes: int, seed: int) -> torch.Tensor:
    """Positions (ascending) of a stratified `fraction` of `labels`: exactly round(fraction * n) >= 1."""
    n = labels.numel()
    if fraction >= 1.0:
        return torch.arange(n)
    keep = int(round(fraction * n))
    if keep < 1:
        raise ValueError(
            f"data.fraction={fraction} keeps no images of the {n}-image training split; raise data.fraction"
        )
    return torch.nonzero(stratified_pick(labels, keep, num_classes, generator(seed, SUBSET))).flatten()


def add_label_noise(
    labels: torch.Tensor, noise: float, num_classes: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(noisy labels, mask of changed positions): exactly round(noise * n) labels moved to a different class.

    The replacement class is uniform over the other `num_classes - 1` classes.
    """
    labels = labels.to(torch.int64).cpu()
    n = labels.numel()
    m = int(round(noise * n))
    mask = torch.zeros(n, dtype=torch.bool)
    if m == 0:
        return labels.clone(), mask
    if num_classes < 2:
        raise ValueError(
            "data.label_noise needs at least 2 classes (a noisy label must differ from the true one)"
        )
    gen = generator(seed, NOISE)
    # draw for every position, so the same image gets the same wrong label at every noise level
    perm = torch.randperm(n, generator=gen)
    shift = torch.randint(1, num_classes, (n,), generator=gen)
    chosen = perm[:m]
    mask[chosen] = True
    noisy = labels.clone()
    noisy[chosen] = (labels[chosen] + shift[chosen]) % num_classes
    return noisy, mask
