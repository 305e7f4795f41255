"""ChordNet: a small convolutional-recurrent network over the CQT (after McFee & Bello 2017).

Three convolutions look at ±0.3 s and ±1 semitone of the 36-bins-per-octave CQT and pool it to one
bin per semitone; a bidirectional GRU then hears the whole excerpt, so a chord is judged from its
context (the bass note before it, the key around it). Five heads share that state: the chord class
(vocabulary.N_CLASSES), its 12 tones, its bass note (13 with none), the key (24) and a chord change.
"""

from __future__ import annotations

import torch
from torch import nn


class ChordNet(nn.Module):
    def __init__(self, n_bins: int, n_classes: int, width: int = 128, hidden: int = 96):
        super().__init__()
        self.config = {"n_bins": n_bins, "n_classes": n_classes, "width": width, "hidden": hidden}

        def conv(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.frontend = nn.Sequential(*conv(1, 8), *conv(8, 8), nn.MaxPool2d((1, 3)), nn.Dropout(0.1), *conv(8, 16))
        self.project = nn.Sequential(nn.Linear(16 * (n_bins // 3), width), nn.LayerNorm(width), nn.ReLU(), nn.Dropout(0.2))
        self.gru = nn.GRU(width, hidden, num_layers=2, batch_first=True, bidirectional=True, dropout=0.1)
        self.heads = nn.ModuleDict({
            "chord": nn.Linear(2 * hidden, n_classes), "tones": nn.Linear(2 * hidden, 12),
            "bass": nn.Linear(2 * hidden, 13), "key": nn.Linear(2 * hidden, 24), "change": nn.Linear(2 * hidden, 1),
        })  # fmt: skip

    def forward(self, spec: torch.Tensor) -> dict[str, torch.Tensor]:
        """``spec`` (batch, frames, bins) -> logits of each head, (batch, frames, size)."""
        x = self.frontend(spec.unsqueeze(1))  # (b, c, t, f)
        b, c, t, f = x.shape
        x = self.project(x.permute(0, 2, 1, 3).reshape(b, t, c * f))
        x, _ = self.gru(x)
        return {name: head(x) for name, head in self.heads.items()}
