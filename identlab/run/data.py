"""Training data: each member's pairs and SIGReg directions, from its own streams."""

from __future__ import annotations

import numpy as np
import torch

from identlab.config import RunConfig
from identlab.core import seeding
from identlab.sigreg import random_directions
from identlab.world.mixers import stack_weights
from identlab.world.world import World

__all__ = ["PairStream", "FramePairStream"]


class PairStream:
    """Per-member training pairs and SIGReg directions, drawn ``chunk`` steps at a time
    from each member's own streams (so a member's data never depends on its batch)."""

    def __init__(self, worlds: list[World], cfgs: list[RunConfig], device: torch.device,
                 slices: int) -> None:
        self.worlds = worlds
        self.batch = cfgs[0].train.batch
        self.chunk = cfgs[0].train.data_chunk
        self.device = device
        self.slices = slices
        self.rngs = [seeding.rng(c.seed, "train") for c in cfgs]
        self.dir_gens = [seeding.torch_generator(c.seed, "directions") for c in cfgs]
        self.mix_cls = type(worlds[0].mixer)
        self.mix_w = stack_weights([w.mixer for w in worlds], device)
        self._chunk_id = -1

    def _fill(self, chunk_id: int) -> None:
        n = self.chunk * self.batch
        zt, zt1 = zip(*(w.sample_pairs(n, r) for w, r in zip(self.worlds, self.rngs)))
        z = torch.from_numpy(np.concatenate([np.stack(zt), np.stack(zt1)], axis=1))
        z = z.to(device=self.device, dtype=torch.float32)  # (K, 2n, N)
        x = self.mix_cls.apply(self.mix_w, z)  # (K, 2n, D)
        self.x_t, self.x_t1 = x[:, :n], x[:, n:]
        self._draw_directions()
        self._chunk_id = chunk_id

    def _draw_directions(self) -> None:
        if self.slices:
            dim = self.worlds[0].dim
            d = torch.stack([random_directions(dim, self.slices, g, torch.float64,
                                               leading=(self.chunk,))
                             for g in self.dir_gens])  # (K, C, N, S)
            self.dirs = d.to(device=self.device, dtype=torch.float32)

    def __call__(self, step: int):
        c, i = divmod(step, self.chunk)
        if c != self._chunk_id:
            self._fill(c)
        sl = slice(i * self.batch, (i + 1) * self.batch)
        dirs = self.dirs[:, i] if self.slices else None
        return self.x_t[:, sl], self.x_t1[:, sl], dirs


class FramePairStream(PairStream):
    """Pixel worlds: each member trains on its own finite set of ``world.mixer.pairs``
    pre-rendered pairs (frame_t, frame_t+1), drawn once with ``World.train_frames`` from
    the member's ``train`` stream (consecutive frames of runs of ``world.mixer.trajectory``
    transitions, or independent pairs) and kept as uint8 on the device (the encoder
    converts a batch to float). Minibatches walk through per-member random permutations
    of the pairs (epochs), drawn from the same stream; SIGReg directions as in
    :class:`PairStream`. The members' held-out eval frames (independent pairs) are
    rendered in the same pass (never trained on)."""

    def __init__(self, worlds: list[World], cfgs: list[RunConfig], device: torch.device,
                 slices: int, progress: bool = True) -> None:
        from identlab.world import pixels

        super().__init__(worlds, cfgs, device, slices)
        mixer = cfgs[0].world.mixer
        self.pairs = mixer.pairs
        root = pixels.cache_root()
        train_sets, eval_sets, first, second = [], [], [], []
        for cfg, world, rng in zip(cfgs, worlds, self.rngs):
            z, a, b = world.train_frames(self.pairs, mixer.trajectory, rng)
            train_sets.append(world.frames_of("train", z, root))
            first.append(a)
            second.append(b)
            eval_sets.append(world.frame_set("eval", *world.eval_pairs(cfg.eval.n), root))
        self.render_info = pixels.ensure_frames(train_sets + eval_sets, progress=progress)
        self.frames = torch.stack([torch.from_numpy(s.load()) for s in train_sets]).to(
            device)  # (K, F, 3, H, W) uint8
        self.first = torch.from_numpy(np.stack(first)).to(device)  # (K, P) frame of z_t
        self.second = torch.from_numpy(np.stack(second)).to(device)  # (K, P) of z_t+1
        self._order = [np.empty(0, dtype=np.int64) for _ in cfgs]

    def _indices(self, k: int, n: int) -> np.ndarray:
        """The next n training-pair indices of member k (epoch-wise permutations)."""
        order = self._order[k]
        while len(order) < n:
            order = np.concatenate([order, self.rngs[k].permutation(self.pairs)])
        self._order[k] = order[n:]
        return order[:n]

    def _fill(self, chunk_id: int) -> None:
        n = self.chunk * self.batch
        idx = np.stack([self._indices(k, n) for k in range(len(self.worlds))])
        self.idx = torch.from_numpy(idx).to(self.device)  # (K, C·B)
        self.members = torch.arange(len(self.worlds), device=self.device)[:, None]
        self._draw_directions()
        self._chunk_id = chunk_id

    def __call__(self, step: int):
        c, i = divmod(step, self.chunk)
        if c != self._chunk_id:
            self._fill(c)
        idx = self.idx[:, i * self.batch:(i + 1) * self.batch]  # (K, B)
        x_t = self.frames[self.members, self.first[self.members, idx]]  # (K, B, 3, H, W)
        x_t1 = self.frames[self.members, self.second[self.members, idx]]
        dirs = self.dirs[:, i] if self.slices else None
        return x_t, x_t1, dirs
