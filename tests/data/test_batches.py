"""Batch iterables: order per seed and epoch, augmentation correctness and determinism, normalisation."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nas.data.batches import EvalBatches, Normalizer, TrainBatches

N, C, S, P = 50, 3, 8, 2
CPU = torch.device("cpu")


def images(n: int = N) -> torch.Tensor:
    # every pixel distinct within an image, and the image index recoverable from pixel (0, 0, 0)
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, C, S, S), generator=g, dtype=torch.uint8)


def identity() -> Normalizer:
    return Normalizer([0.0], [1.0 / 255.0], C, CPU)  # x / 255 * 255 = x: batches equal the raw pixels


def loader(x: torch.Tensor, **kw) -> TrainBatches:
    targets = torch.arange(x.shape[0])
    return TrainBatches(x, targets, batch_size=kw.pop("batch_size", 8), normalizer=identity(), **kw)


def epoch(tb: TrainBatches) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return list(tb)


def test_length_and_drop_last():
    x = images()
    assert len(loader(x, drop_last=True)) == 6
    assert len(loader(x, drop_last=False)) == 7
    sizes = [len(y) for _, y in loader(x, drop_last=False)]
    assert sizes == [8] * 6 + [2]
    assert [len(y) for _, y in loader(x, drop_last=True)] == [8] * 6


def test_each_epoch_is_a_permutation_reshuffled_per_epoch():
    tb = loader(images(), drop_last=False)
    orders = [torch.cat([y for _, y in tb]) for _ in range(3)]  # standalone: epochs 0, 1, 2
    for o in orders:
        assert sorted(o.tolist()) == list(range(N))
    assert not torch.equal(orders[0], orders[1])
    assert not torch.equal(orders[1], orders[2])


def test_same_order_per_seed_across_instances_and_set_epoch():
    a, b = loader(images(), seed=7), loader(images(), seed=7)
    first_a = [y for _, y in a]
    first_b = [y for _, y in b]
    assert all(torch.equal(p, q) for p, q in zip(first_a, first_b, strict=True))
    # Lightning sets the epoch before iterating: epoch 3 of a fresh loader equals a's fourth epoch
    for _ in range(2):
        list(a)  # epochs 1 and 2
    c = loader(images(), seed=7)
    c.sampler.set_epoch(3)
    assert all(torch.equal(p, q) for (_, p), (_, q) in zip(c, a, strict=True))
    d = loader(images(), seed=8)
    assert not all(torch.equal(p, q) for p, (_, q) in zip(first_a, d, strict=True))


def test_iter_without_consuming_costs_nothing_and_keeps_order():
    a, b = loader(images(), seed=1), loader(images(), seed=1)
    a.sampler.set_epoch(0)
    iter(a)  # Lightning probes iterability like this
    a.sampler.set_epoch(0)
    assert all(torch.equal(p, q) for (_, p), (_, q) in zip(a, b, strict=True))


def test_no_augmentation_returns_the_images():
    x = images()
    for xb, yb in loader(x):
        assert xb.dtype == torch.float32 and yb.dtype == torch.int64
        assert torch.equal(xb, x[yb].float())


def reference_crop(padded: torch.Tensor, dy: int, dx: int, flip: bool) -> torch.Tensor:
    out = padded[:, dy : dy + S, dx : dx + S]
    return out.flip(-1) if flip else out


def test_random_crop_and_flip_are_windows_of_the_padded_image():
    x = images()
    padded = F.pad(x, (P, P, P, P))
    tb = loader(padded, padding=P, flip=True, seed=3, drop_last=False)
    seen_offsets, flips = set(), 0
    for xb, yb in tb:
        assert xb.shape == (len(yb), C, S, S)
        for img, i in zip(xb, yb.tolist(), strict=True):
            # find the (dy, dx, flip) that reproduces this sample: exactly one must
            matches = [
                (dy, dx, f)
                for dy in range(2 * P + 1)
                for dx in range(2 * P + 1)
                for f in (False, True)
                if torch.equal(img, reference_crop(padded[i], dy, dx, f).float())
            ]
            assert len(matches) >= 1
            seen_offsets.add(matches[0][:2])
            flips += matches[0][2]
    assert len(seen_offsets) > 10, "offsets vary across the epoch"
    assert 10 < flips < 40, "about half the images are flipped"


def test_augmentation_is_deterministic_per_seed_and_varies_per_epoch():
    padded = F.pad(images(), (P, P, P, P))
    a = [xb for xb, _ in loader(padded, padding=P, flip=True, seed=11)]
    b = [xb for xb, _ in loader(padded, padding=P, flip=True, seed=11)]
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    tb = loader(padded, padding=P, flip=True, seed=11)
    tb.sampler.set_epoch(1)
    c = [xb for xb, _ in tb]
    assert not all(torch.equal(p, q) for p, q in zip(a, c, strict=True))


def test_flip_only():
    x = images()
    for xb, yb in loader(x, flip=True, seed=2):
        for img, i in zip(xb, yb.tolist(), strict=True):
            assert torch.equal(img, x[i].float()) or torch.equal(img, x[i].flip(-1).float())


def test_ranks_take_disjoint_equal_shares_of_one_permutation():
    x = images()
    shards = [loader(x, seed=4, rank=r, world_size=3, drop_last=False) for r in range(3)]
    seen = [torch.cat([y for _, y in s]) for s in shards]
    assert [len(s) for s in seen] == [N // 3] * 3
    assert len(set(torch.cat(seen).tolist())) == 3 * (N // 3)


def test_normalizer_per_channel_and_uniform():
    x = torch.full((2, 3, 2, 2), 51, dtype=torch.uint8)  # 0.2 in [0, 1] units
    norm = Normalizer([0.1, 0.2, 0.3], [0.5, 0.25, 0.1], 3, CPU)
    out = norm(x)
    expected = torch.tensor([(0.2 - 0.1) / 0.5, 0.0, (0.2 - 0.3) / 0.1]).view(1, 3, 1, 1).expand_as(out)
    assert torch.allclose(out, expected, atol=1e-6)
    grey = Normalizer([0.2], [0.5], 1, CPU)(x[:, :1])
    assert torch.allclose(grey, torch.zeros_like(grey), atol=1e-6)
    plain = Normalizer(None, None, 3, CPU)(x)
    assert torch.allclose(plain, torch.full_like(plain, 0.2))


def test_eval_batches_in_order_and_sharded():
    x = images()
    t = torch.arange(N)
    ev = EvalBatches(x, t, batch_size=16, normalizer=identity())
    assert len(ev) == 4
    assert torch.equal(torch.cat([y for _, y in ev]), t)
    assert torch.equal(torch.cat([b for b, _ in ev]), x.float())
    parts = [
        torch.cat(
            [y for _, y in EvalBatches(x, t, batch_size=16, normalizer=identity(), rank=r, world_size=2)]
        )
        for r in range(2)
    ]
    assert torch.equal(torch.cat(parts), t)
    assert len(EvalBatches(x[:0], t[:0], batch_size=4, normalizer=identity())) == 0
