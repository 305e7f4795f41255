"""The infilling model, loaded once: fill a gap in a part, or score how likely a given middle is.

``Infiller.fill`` builds the prompt (prefix and suffix around the gap, the part, meter, gap length and a
density target), samples twice as many candidates as variations in one batch through a KV cache under
``MiddleGrammar`` (while a bar is short of the target density, ending it or skipping steps costs
likelihood), keeps the candidates closest to the target density, and returns notes that start inside
the gap and end by its end. models/generator/MODEL_CARD.md describes the checkpoint.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from reascribe.errors import ModelError
from reascribe.models.checkpoint import load_checkpoint
from reascribe.models.generator.grammar import MiddleGrammar
from reascribe.models.generator.network import Config, InfillNet
from reascribe.models.generator.vocab import (
    MAX_STEPS_PER_BAR,
    STEPS_PER_BEAT,
    VOCAB,
    Gap,
    GridNote,
    decode_bars,
    density_bin,
    fim_middle,
    fim_prompt,
    notes_per_beat,
)

log = logging.getLogger(__name__)

CHECKPOINT = Path(__file__).with_name("generator.pt")
CONTEXT_BARS = 4  # bars of context each side, as in training
CHUNK_BARS = 4  # longer gaps that would not fit the model's window are written this many bars at a time
# One token at a time multiplies matrices of a few rows: a second thread only adds synchronisation, and
# on a busy machine it waits for a core (measured 30x slower at 2 threads while another job trained).
SAMPLING_THREADS = 1
TOKENS_PER_NOTE = 3.5  # POS share + PITCH DUR VEL: to budget the window for a middle
# Nats taken off ending a bar per note it lacks for the target density (a small model ends bars early);
# chosen on the validation split (bench/generate.py --split validation).
DENSITY_GUIDANCE = 0.5
# Nats per expected note in the steps a position jumps over, while a bar is short (chosen as above; the
# model otherwise jumps ahead and leaves drum bars half empty).
SKIP_GUIDANCE = 1.0
DENSITY_CANDIDATES = 2  # fills sampled per variation wanted; the ones closest to the target density stay


class Infiller:
    def __init__(self, checkpoint: Path = CHECKPOINT, net: InfillNet | None = None):
        self.net = net if net is not None else _load(checkpoint)
        self.net.eval()
        self.max_len = self.net.cfg.max_len
        self.density_guidance = DENSITY_GUIDANCE
        self.skip_guidance = SKIP_GUIDANCE
        self._positions = torch.arange(MAX_STEPS_PER_BAR, dtype=torch.float32)

    def fill(
        self,
        notes: list[GridNote],
        gap: Gap,
        part: str,
        *,
        variations: int = 1,
        temperature: float = 1.0,
        density: float = 1.0,
        use_suffix: bool = True,
        seed: int | None = None,
    ) -> list[list[GridNote]]:
        """``variations`` fills of ``gap``; ``density`` scales the notes per beat of the context."""
        threads = torch.get_num_threads()
        torch.set_num_threads(SAMPLING_THREADS)
        try:
            return self._fill(notes, gap, part, variations, temperature, density, use_suffix, seed)
        finally:
            torch.set_num_threads(threads)

    def _fill(self, notes, gap, part, variations, temperature, density, use_suffix, seed) -> list[list[GridNote]]:
        generator = torch.Generator()
        generator.manual_seed(seed) if seed is not None else generator.seed()
        wanted = context_density(notes, gap) * density  # notes per beat
        target = density_bin(wanted)
        context = [n for n in notes if n.onset < gap.start or n.onset >= gap.end]
        chunks = self._chunks(context, gap)
        n = variations * DENSITY_CANDIDATES
        fills: list[list[GridNote]] = [[] for _ in range(n)]
        for i, chunk in enumerate(chunks):
            suffix = use_suffix and i == len(chunks) - 1  # earlier pieces continue what precedes them
            prompts = [self._prompt(context + fills[v], chunk, part, target, suffix) for v in range(n)]
            for v, tokens in enumerate(self._sample(prompts, chunk, part, temperature, wanted, generator)):
                fills[v] += decode_bars(tokens, chunk.first_bar, chunk.steps_per_bar)
        candidates = [finish(fill, gap, part) for fill in fills]
        # Rejection on density: the density token steers, these keep the candidates closest to the target.
        ranked = sorted(range(n), key=lambda v: abs(notes_per_beat(candidates[v], gap.end - gap.start) - wanted))
        return [candidates[v] for v in sorted(ranked[:variations])]

    @torch.inference_mode()
    def nll(self, notes: list[GridNote], gap: Gap, part: str, middle: list[GridNote],
            use_suffix: bool = True) -> tuple[float, int]:
        """(nats, tokens) of the true ``middle``'s bar and note tokens (EOS left out, so models that never
        write it compare), with the density target ``fill`` would use."""
        target = density_bin(context_density(notes, gap))
        context = [n for n in notes if n.onset < gap.start or n.onset >= gap.end]
        body = fim_middle(middle, gap, part)
        for bars in range(CONTEXT_BARS, -1, -1):
            prompt = fim_prompt(context, gap, part, target, bars, use_suffix)
            if len(prompt) + len(body) <= self.max_len:
                break
        else:
            return float("nan"), len(body)
        tokens = torch.tensor([prompt + body])
        logp = torch.log_softmax(self.net(tokens[:, :-1])[0], -1)
        scored = range(len(prompt) - 1, tokens.shape[1] - 2)  # predictions of body[:-1]
        picked = logp[list(scored), tokens[0, len(prompt) : len(prompt) + len(scored)]]
        return float(-picked.sum()), len(scored)

    def _chunks(self, context: list[GridNote], gap: Gap) -> list[Gap]:
        """The gap itself, or 4-bar pieces of it when its middle would not fit the window."""
        if self._middle_budget(context, gap) <= self.max_len // 2 or gap.n_bars <= CHUNK_BARS:
            return [gap]
        spb, chunks, start = gap.steps_per_bar, [], gap.start
        while start < gap.end:
            end = min(gap.end, (start // spb + CHUNK_BARS) * spb)
            chunks.append(Gap(start, end, spb))
            start = end
        return chunks

    def _middle_budget(self, context: list[GridNote], gap: Gap) -> int:
        per_beat = max(1.0, context_density(context, gap)) * 2  # room for a fill twice as dense as the context
        return int(gap.n_bars * gap.steps_per_bar / 4 * per_beat * TOKENS_PER_NOTE) + gap.n_bars + 2

    def _prompt(self, context: list[GridNote], gap: Gap, part: str, target: int, use_suffix: bool) -> list[int]:
        """The prompt with the most context bars (up to 4) that leave the window room for the middle."""
        room = self.max_len - min(self._middle_budget(context, gap), self.max_len // 2)
        for bars in range(CONTEXT_BARS, 0, -1):
            prompt = fim_prompt(context, gap, part, target, bars, use_suffix)
            if len(prompt) <= room:
                return prompt
        return fim_prompt(context, gap, part, target, 0, use_suffix)

    def _sample(self, prompts: list[list[int]], gap: Gap, part: str, temperature: float, per_beat: float,
                generator) -> list[list[int]]:
        """One middle per prompt; identical prompts (all of them, for a gap in one piece) share a batch."""
        groups: dict[tuple, list[int]] = {}
        for i, prompt in enumerate(prompts):
            groups.setdefault(tuple(prompt), []).append(i)
        out: list[list[int]] = [[] for _ in prompts]
        for prompt, rows in groups.items():
            batch = self._sample_batch(list(prompt), len(rows), gap, part, temperature, per_beat, generator)
            for i, tokens in zip(rows, batch):
                out[i] = tokens
        return out

    @torch.inference_mode()
    def _sample_batch(self, prompt: list[int], n: int, gap: Gap, part: str, temperature: float, per_beat: float,
                      generator) -> list[list[int]]:
        caches = self.net.new_caches(n)
        logits = self.net(torch.tensor([prompt] * n), caches)[:, -1]
        grammars = [MiddleGrammar(gap, part) for _ in range(n)]
        written: list[list[int]] = [[] for _ in range(n)]
        for step in range(len(prompt), self.max_len):
            masks = torch.stack([g.mask() for g in grammars])
            logits = logits.masked_fill(~masks, float("-inf"))
            per_step = per_beat / STEPS_PER_BEAT
            for row, g in enumerate(grammars):
                # Density guidance: a bar short of notes is less likely to end, or to skip the steps ahead.
                short = per_step * g.steps_in_bar() - g.notes_in_bar
                if short > 0 and not g.done:
                    logits[row, [VOCAB.BAR, VOCAB.EOS]] -= self.density_guidance * short
                    skipped = (self._positions - g.pos - 1).clamp(min=0)
                    logits[row, VOCAB.pos0 : VOCAB.pos0 + len(skipped)] -= self.skip_guidance * per_step * skipped
            if temperature <= 0:
                chosen = logits.argmax(-1)
            else:
                chosen = torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=generator)[:, 0]
            for g, w, token in zip(grammars, written, chosen.tolist()):
                if not g.done:
                    g.push(token)
                    w.append(token)
            if all(g.done for g in grammars):
                break
            logits = self.net(chosen[:, None], caches, offset=step)[:, -1]
        else:
            log.info("the fill reached the model's window of %d tokens; its last bars stay empty", self.max_len)
        return written


def context_density(notes: list[GridNote], gap: Gap) -> float:
    """Notes per beat in the bars around the gap (4 each side), the fill's default density; 1 when the
    context is empty, so a fill on an empty track still plays."""
    spb = gap.steps_per_bar
    lo = max(0, (gap.first_bar - CONTEXT_BARS) * spb)
    hi = (gap.first_bar + gap.n_bars + CONTEXT_BARS) * spb
    inside = [n for n in notes if lo <= n.onset < hi and not gap.start <= n.onset < gap.end]
    span = (gap.start - lo) + ((hi - gap.end) if any(n.onset >= gap.end for n in notes) else 0)
    return notes_per_beat(inside, span) if inside else 1.0


def finish(fill: list[GridNote], gap: Gap, part: str) -> list[GridNote]:
    """Notes inside the gap, ending by its end; a melody never overlaps itself."""
    notes = sorted(n for n in fill if gap.start <= n.onset < gap.end)
    out = []
    for i, n in enumerate(notes):
        end = min(n.onset + n.duration, gap.end)
        if part == "melody" and i + 1 < len(notes):
            end = min(end, notes[i + 1].onset)
        out.append(GridNote(n.onset, n.pitch, max(1, end - n.onset), n.velocity))
    return out


def _load(path: Path) -> InfillNet:
    state = load_checkpoint(path, "generator model")
    if state.get("vocab") != VOCAB.names:
        raise ModelError(f"The generator model {path} does not match this version of reascribe; reinstall it.")
    net = InfillNet(Config(**state["config"]))
    net.load_state_dict({k: v.float() for k, v in state["net"].items()})
    return net

