"""The infilling model, loaded once: fill a gap in a part, or score how likely a given middle is.

``Infiller.fill`` reads the context (``context.read_context``: key, groove, density, the pitches at the
joins), builds the prompt (prefix and suffix around the gap, the part, meter, gap length and a density
target) and samples several candidates per variation in one batch through a KV cache, under
``MiddleGrammar`` and soft guidance: while a bar is short of the target density, ending it costs
likelihood, and so do onsets off the density's pace; pitches outside the context's key cost likelihood,
and so do pitch classes the song plays less where it repeats that bar; the groove of the context's
bars (where onsets fall, how many notes they hold, which drums play) steers where the next note goes
(``GuidanceTable``). The candidates that fit the context best
(``Context.cost``) are returned, as notes that start inside the gap and end by its end.
models/generator/MODEL_CARD.md describes the checkpoint.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from reascribe.errors import ModelError
from reascribe.models.checkpoint import load_checkpoint
from reascribe.models.generator import density as fill_density
from reascribe.models.generator.context import (
    CONTEXT_BARS,
    MAX_STACK,
    N_DRUM,
    Context,
    read_context,
)
from reascribe.models.generator.grammar import MiddleGrammar
from reascribe.models.generator.network import Config, InfillNet
from reascribe.models.generator.vocab import (
    MAX_STEPS_PER_BAR,
    MIDDLE,
    STEPS_PER_BEAT,
    VOCAB,
    Gap,
    GridNote,
    annotate,
    bar_row,
    decode_bars,
    density_bin,
    fim_middle,
    fim_prompt,
)

log = logging.getLogger(__name__)

CHECKPOINT = Path(__file__).with_name("generator.pt")
CHUNK_BARS = 4  # longer gaps that would not fit the model's window are written this many bars at a time
# One token at a time multiplies matrices of a few rows: a second thread only adds synchronisation, and
# on a busy machine it waits for a core (measured 30x slower at 2 threads while another job trained).
SAMPLING_THREADS = 1
TOKENS_PER_NOTE = 3.5  # POS share + PITCH DUR VEL: to budget the window for a middle
# Nats taken off ending a bar per note it lacks for the target density, added per note it has too many
# (the model alone writes melodies a third denser than asked); chosen on the validation split
# (bench/generate.py --split validation).
DENSITY_GUIDANCE = 1.5
# Nats per note the next onset's position leaves the bar behind the target density's pace, or more than one
# note ahead of it (chosen as above; the model otherwise jumps ahead and leaves drum bars half empty, or
# crowds a melody's notes early in its bars).
PACE_GUIDANCE = 3.0
# Nats per note a bar is behind the target density's pace, added to one more note at the current position
# (chosen as above; the model stacks too few drums at an onset, so dense grooves came out a fifth short).
STACK_GUIDANCE = 1.0
# Nats off a pitch outside the context's key (chosen as above).
KEY_GUIDANCE = 1.5
# Groove guidance: after each note, another note at its position, the next onset's position and the bar's
# end gain GROOVE_GUIDANCE times the log of how likely the context's bars make them (chosen as above),
# so the groove holds unless the model is sure of a change.
GROOVE_GUIDANCE = 2.0
# Nats per semitone the fill's first top note leaps further from, or less far than, the leap the join
# model asks of it (chosen as above from 0 / 0.25 / 0.5 / 1.0 / 2.0; the ranking alone left the chosen
# fills' first leaps about 3 semitones from it).
JOIN_GUIDANCE = 1.0
# Class guidance: a pitch gains CLASS_GUIDANCE times the log of its class's share (+ CLASS_FLOOR) in the
# bars where the song repeats the bar being written (Context.bar_classes), so fills play the harmony the
# song plays there (chosen as above from 0.5 / 0.75 / 1.0 / 2.0 for piano and 0.5 / 1.0 for melody: 1.0
# took pitch classes from 0.348 / 0.314 / 0.285 to 0.330 / 0.306 / 0.292 for piano at 1 / 2 / 4 bars and
# joins from 3.97 / 3.84 / 4.12 semitones to 3.95 / 3.91 / 3.97; melody pitch classes from 0.317 / 0.295 /
# 0.281 to 0.295 / 0.278 / 0.266).
CLASS_GUIDANCE = 1.0
CLASS_FLOOR = 0.05  # a class the repeats never play loses about 2 nats to one with a share of 0.3
GROOVE_FLOOR = 0.1  # added to those likelihoods, so nothing the context never does is ruled out
# Candidates sampled, of which the ones that fit the context best stay. A gap written in one piece (up to 4
# bars, or more of a sparse part) samples 32 whatever its length: its candidates read one shared copy of
# the prompt, which halved the time of a 4-bar fill and pays for the 32 (a one-take 4-bar drum fill takes
# about 0.8 s). On validation, 32 against 16 candidates brought 4-bar piano pitch classes from 0.284 to
# 0.268, melody joins from 1.94 to 1.83 semitones and drum classes from 0.133 to 0.127; at 1 bar, piano
# joins from 4.08 to 3.76 semitones. A gap written in pieces reads a different prompt per candidate after
# its first piece: it samples 64 bars' worth per variation wanted (8 for 8 bars) and at most 128 bars in
# all, so an 8-bar fill takes under a second and three 8-bar takes sample 16.
PIECE_CANDIDATES = 32
CANDIDATE_BARS = 64
SAMPLED_BARS = 128


class Infiller:
    def __init__(self, checkpoint: Path = CHECKPOINT, net: InfillNet | None = None):
        self.net = net if net is not None else _load(checkpoint)
        self.net.eval()
        self.max_len = self.net.cfg.max_len
        self.density_guidance = DENSITY_GUIDANCE
        self.pace_guidance = PACE_GUIDANCE
        self.key_guidance = KEY_GUIDANCE
        self.class_guidance = CLASS_GUIDANCE
        self.groove_guidance = GROOVE_GUIDANCE
        self.stack_guidance = STACK_GUIDANCE
        self.join_guidance = JOIN_GUIDANCE
        self.candidates: int | None = None  # per variation; None: as PIECE_CANDIDATES and CANDIDATE_BARS say
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
        # A continuation reads only what comes before the gap, for its guidance and ranking too.
        fit = read_context(notes if use_suffix else [n for n in notes if n.onset < gap.start], gap, part, density)
        target = density_bin(fit.density)
        context = [n for n in notes if n.onset < gap.start or n.onset >= gap.end]
        chunks = self._chunks(context, gap, part)
        if self.candidates:
            n = variations * self.candidates
        elif len(chunks) == 1:
            n = max(variations, PIECE_CANDIDATES)
        else:
            n = max(variations, min(variations * CANDIDATE_BARS // gap.n_bars, SAMPLED_BARS // gap.n_bars))
        fills: list[list[GridNote]] = [[] for _ in range(n)]
        for i, chunk in enumerate(chunks):
            suffix = use_suffix and i == len(chunks) - 1  # earlier pieces continue what precedes them
            prompts = [self._prompt(context + fills[v], chunk, part, target, suffix) for v in range(n)]
            first = i == 0  # the piece that joins the notes before the gap
            for v, tokens in enumerate(self._sample(prompts, chunk, fit, temperature, generator, first)):
                fills[v] += decode_bars(tokens, chunk.first_bar, chunk.steps_per_bar)
        candidates = [finish(fill, gap, part) for fill in fills]
        ranked = sorted(range(n), key=lambda v: fit.cost(candidates[v]))
        return [candidates[v] for v in sorted(ranked[:variations])]

    @torch.inference_mode()
    def nll(self, notes: list[GridNote], gap: Gap, part: str, middle: list[GridNote],
            use_suffix: bool = True) -> tuple[float, int]:
        """(nats, tokens) of the true ``middle``'s bar and note tokens (EOS left out, so models that never
        write it compare), with the density target ``fill`` would use."""
        context = [n for n in notes if n.onset < gap.start or (use_suffix and n.onset >= gap.end)]
        target = density_bin(fill_density.predict(context, gap, part))
        body = fim_middle(middle, gap, part)
        for bars in range(CONTEXT_BARS, -1, -1):
            prompt = fim_prompt(context, gap, part, target, bars, use_suffix)
            if len(prompt) + len(body) <= self.max_len:
                break
        else:
            return float("nan"), len(body)
        tokens = torch.tensor([prompt + body])
        segments, bars, dens = annotate(prompt + body)
        where = torch.tensor([segments, bars]).T[None, :-1]
        logp = torch.log_softmax(self.net(tokens[:, :-1], len(prompt), where, torch.tensor([dens]))[0], -1)
        scored = range(len(prompt) - 1, tokens.shape[1] - 2)  # predictions of body[:-1]
        picked = logp[list(scored), tokens[0, len(prompt) : len(prompt) + len(scored)]]
        return float(-picked.sum()), len(scored)

    def _chunks(self, context: list[GridNote], gap: Gap, part: str) -> list[Gap]:
        """The gap itself, or 4-bar pieces of it when its middle would not fit the window."""
        if self._middle_budget(context, gap, part) <= self.max_len // 2 or gap.n_bars <= CHUNK_BARS:
            return [gap]
        spb, chunks, start = gap.steps_per_bar, [], gap.start
        while start < gap.end:
            end = min(gap.end, (start // spb + CHUNK_BARS) * spb)
            chunks.append(Gap(start, end, spb))
            start = end
        return chunks

    def _middle_budget(self, context: list[GridNote], gap: Gap, part: str) -> int:
        # Room for a fill twice as dense as the context asks for.
        per_beat = max(1.0, fill_density.predict(context, gap, part)) * 2
        return int(gap.n_bars * gap.steps_per_bar / 4 * per_beat * TOKENS_PER_NOTE) + gap.n_bars + 2

    def _prompt(self, context: list[GridNote], gap: Gap, part: str, target: int, use_suffix: bool) -> list[int]:
        """The prompt with the most context bars (up to 4) that leave the window room for the middle."""
        room = self.max_len - min(self._middle_budget(context, gap, part), self.max_len // 2)
        for bars in range(CONTEXT_BARS, 0, -1):
            prompt = fim_prompt(context, gap, part, target, bars, use_suffix)
            if len(prompt) <= room:
                return prompt
        return fim_prompt(context, gap, part, target, 0, use_suffix)

    @torch.inference_mode()
    def _sample(self, prompts: list[list[int]], gap: Gap, fit: Context, temperature: float,
                generator, joins_before: bool = True) -> list[list[int]]:
        """One middle per prompt, all in one batch: shorter prompts are padded on the left."""
        n, longest = len(prompts), max(len(p) for p in prompts)
        pad = torch.tensor([longest - len(p) for p in prompts])
        batch = torch.tensor([[VOCAB.PAD] * (longest - len(p)) + p for p in prompts])
        where, density = torch.zeros((n, longest, 2), dtype=torch.long), torch.zeros(n, dtype=torch.long)
        for i, p in enumerate(prompts):
            segments, bars, density[i] = annotate(p)
            where[i, longest - len(p) :] = torch.tensor([segments, bars]).T
        if not pad.any():
            pad = None  # rows of one length: plain causal attention
        if all(p == prompts[0] for p in prompts):  # one prompt for every row (a gap in one piece):
            caches = self.net.new_caches(1)  # read it once, then every row goes on from there
            logits = self.net(batch[:1], longest, where[:1], density[:1], caches)[:, -1].repeat(n, 1)
            for cache in caches:
                cache.share(n)
        else:
            caches = self.net.new_caches(n)
            logits = self.net(batch, longest, where, density, caches, pad)[:, -1]
        grammars = [MiddleGrammar(gap, fit.part) for _ in range(n)]
        written: list[list[int]] = [[] for _ in range(n)]
        guidance = GuidanceTable(fit, self.key_guidance, self.groove_guidance, self.class_guidance,
                                 gap.first_bar - fit.gap.first_bar)
        join = self._join_offsets(fit) if joins_before else None
        per_step = fit.density / STEPS_PER_BEAT
        for step in range(longest, self.max_len):
            masks = torch.stack([g.mask() for g in grammars])
            logits = guidance.apply(logits.masked_fill(~masks, float("-inf")), grammars)
            logits = self._density(logits, grammars, per_step, guidance.notes)
            if join is not None:
                logits = self._join(logits, grammars, *join)
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
            where = torch.tensor([[[MIDDLE, bar_row(g.bars - 1)]] for g in grammars])
            logits = self.net(chosen[:, None], longest, where, density, caches, pad)[:, -1]
        else:
            log.info("the fill reached the model's window of %d tokens; its last bars stay empty", self.max_len)
        return written

    def _join_offsets(self, fit: Context) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Join guidance by pitch (None where there is nothing to join): (offset of writing each pitch at
        the first onset, of ending that onset on it as its top note). The leap from the note before the
        gap to the first onset's top note misses the join model's by ``miss`` semitones. Notes at an onset
        rise, so a piano note above the leap's upper target makes the top miss by at least that much, and
        one below it can still be covered; a melody's note is the onset's top."""
        if fit.before is None or fit.leaps[0] is None or not self.join_guidance:
            return None
        pitches = torch.arange(128, dtype=torch.float32)
        miss = ((pitches - fit.before).abs() - fit.leaps[0]).abs()
        if fit.part == "melody":
            return -self.join_guidance * miss, torch.zeros(128)
        above = (pitches - fit.before - fit.leaps[0]).clamp(min=0)
        return -self.join_guidance * above, -self.join_guidance * miss

    @staticmethod
    def _join(logits: torch.Tensor, grammars: list[MiddleGrammar], note: torch.Tensor,
              end: torch.Tensor) -> torch.Tensor:
        """Join guidance for the rows writing their first onset (see ``_join_offsets``)."""
        for i, g in enumerate(grammars):
            if g.in_first_onset() and not g.done:
                logits[i, VOCAB.pitch0 : VOCAB.pitch0 + 128] += note
                if g.notes_at_pos:  # what ends the onset: the next position, the bar's end, the end
                    ending = logits[i, VOCAB.pos0 : VOCAB.pos0 + MAX_STEPS_PER_BAR]
                    ending += end[g.pitch_floor]
                    logits[i, [VOCAB.BAR, VOCAB.EOS]] += end[g.pitch_floor]
        return logits

    def _density(self, logits: torch.Tensor, grammars: list[MiddleGrammar], per_step: float,
                 notes: slice) -> torch.Tensor:
        """Density guidance, every row at once (finished rows allow only PAD, which is left alone).

        A bar short of notes is less likely to end, one with more than it should have at all more likely;
        a next onset that leaves the bar behind the target's pace, or more than a note ahead, loses
        likelihood; while the bar is behind, one more note at this onset gains it."""
        state = torch.tensor([[g.steps_in_bar(), g.notes_in_bar, g.first_step(), g.steps_so_far(), g.notes_at_pos]
                              for g in grammars], dtype=torch.float32)
        steps, written, first, so_far, at_pos = state.T
        logits[:, [VOCAB.BAR, VOCAB.EOS]] -= (self.density_guidance * (per_step * steps - written))[:, None]
        due = per_step * (self._positions[None] - first[:, None]) - written[:, None]  # notes due before each
        off_pace = due.clamp(min=0) + (-due - per_step).clamp(min=0)
        logits[:, VOCAB.pos0 : VOCAB.pos0 + MAX_STEPS_PER_BAR] -= self.pace_guidance * off_pace
        behind = (per_step * so_far - written).clamp(min=0) * (at_pos > 0)
        logits[:, notes] += (self.stack_guidance * behind)[:, None]
        return logits


class GuidanceTable:
    """Logit offsets from the context for every sampler state (position in the bar, notes written there).

    Whether a note comes next: after each note, writing another at the same position, the next onset's
    position and the bar's end gain ``groove`` times the log of their likelihood in the context's bars,
    less the likeliest choice's. Which note (``which``): pitches outside the key lose ``key`` nats, and
    each pitch gains ``classes`` times the log share of its class where the song repeats (``by_bar``,
    per bar of the piece being written, which starts at bar ``first_bar`` of the gap); drums
    are written in class order, so the next drum is c when the context's bars play c at that position
    and none of the classes between the last one written and c: it gains ``groove`` times the log of
    that likelihood. This moves likelihood between notes only, never to or from ending the onset
    (penalising every drum but the likeliest one there made onsets hold fewer drums than the context's).
    """

    def __init__(self, fit: Context, key: float, groove: float, classes: float = 0.0, first_bar: int = 0):
        steps = fit.gap.steps_per_bar
        drums = fit.part == "drums"
        self.notes = slice(VOCAB.drum0, VOCAB.drum0 + N_DRUM) if drums else slice(VOCAB.pitch0, VOCAB.pitch0 + 128)
        self.table = torch.zeros((steps + 1) * (MAX_STACK + 1), len(VOCAB))
        # Note offsets by (position + 1, drums: the last drum written there + 1).
        self.which = torch.zeros(steps + 1, N_DRUM + 1 if drums else 1, self.notes.stop - self.notes.start)
        if fit.scale:
            self.which[..., [p for p in range(128) if p % 12 not in fit.scale]] = -key
        # Pitch offsets by bar of the piece being written (from its ``first_bar`` in the gap).
        shares = np.log(fit.bar_classes[first_bar:] + CLASS_FLOOR)[:, np.arange(128) % 12]
        self.by_bar = torch.from_numpy(classes * shares).float() if not drums and classes else None
        if not fit.onsets.any() or groove == 0:
            return
        polyphonic = fit.part != "melody"
        if drums:  # drums are written in class order: the next one is c when none between is played
            played = np.minimum(fit.pattern, 1)  # (class, step)
            for last in range(-1, N_DRUM):
                skipped = np.cumprod(np.vstack([np.ones(steps), 1 - played[last + 1 :]]), axis=0)[:-1]
                first = np.zeros_like(played)
                first[last + 1 :] = played[last + 1 :] * skipped
                self.which[1:, last + 1] += torch.from_numpy(groove * np.log(first + GROOVE_FLOOR).T).float()
        share = np.minimum(fit.onsets, 1)
        for after in range(steps + 1):  # the bar's last onset so far was at step after - 1
            silent = np.concatenate([[1.0], np.cumprod(1 - share[after:])])  # no onset from `after` to q - 1
            nxt = np.zeros(steps)
            nxt[after:] = share[after:] * silent[:-1]
            for count in range(1 if after else 0, MAX_STACK + 1):  # notes written at that onset so far
                more = fit.stack[count - 1] if count and polyphonic else 0.0
                row = self.table[after * (MAX_STACK + 1) + count]
                logs = groove * np.log(np.append((1 - more) * nxt, (1 - more) * silent[-1]) + GROOVE_FLOOR)
                stay = groove * np.log(more + GROOVE_FLOOR) if count else -np.inf
                best = max(logs[after:].max(), stay if polyphonic else -np.inf)
                row[VOCAB.pos0 : VOCAB.pos0 + steps] += torch.from_numpy(logs[:-1] - best).float()
                row[[VOCAB.BAR, VOCAB.EOS]] += float(logs[-1] - best)
                if count:
                    row[self.notes] += float(stay - best)

    @staticmethod
    def state(g: MiddleGrammar) -> int:
        return (g.pos + 1) * (MAX_STACK + 1) + min(g.notes_at_pos, MAX_STACK)

    def apply(self, logits: torch.Tensor, grammars: list[MiddleGrammar]) -> torch.Tensor:
        """``logits`` (already masked by the grammars) with the guidance of each row's state."""
        logits = logits + self.table[[self.state(g) for g in grammars]]
        notes = logits[:, self.notes]
        mass = torch.logsumexp(notes, -1, keepdim=True)
        drums = self.which.shape[1] > 1
        which = notes + self.which[[g.pos + 1 for g in grammars], [g.pitch_floor + 1 if drums else 0 for g in grammars]]
        if self.by_bar is not None:
            which = which + self.by_bar[[max(g.bars - 1, 0) for g in grammars]]
        which = which + (mass - torch.logsumexp(which, -1, keepdim=True))
        logits[:, self.notes] = torch.where(torch.isfinite(mass), which, notes)
        return logits


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

