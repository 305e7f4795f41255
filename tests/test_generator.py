"""The infilling generator: tokens, fill-in-the-middle examples, the fill's constraints, the request
shape and `reascribe generate`."""

from __future__ import annotations

import subprocess
import sys
import time

import mido
import numpy as np
import pytest
import torch

from reascribe import midi_out
from reascribe.errors import RequestError
from reascribe.events import Events, NoteEvent
from reascribe.generate import FillOptions, detect_part, fill_gap
from reascribe.models.generator.context import class_histogram, key_scale, read_context, repeat_histograms, top_voice
from reascribe.models.generator.grammar import MiddleGrammar
from reascribe.models.generator.infill import GuidanceTable, Infiller
from reascribe.models.generator.network import Config, InfillNet
from reascribe.models.generator.vocab import (
    BAR_ROWS,
    MIDDLE,
    SEGMENTS,
    VOCAB,
    Gap,
    GridNote,
    annotate,
    bar_row,
    decode_bars,
    encode_bars,
    fim_middle,
    fim_prompt,
)
from reascribe.protocol import parse_request
from reascribe.tempo import TempoMap
from training import generator_data


def random_infiller(seed=0) -> Infiller:
    """A tiny untrained network: it writes anything the grammar allows, so constraints are what is tested."""
    torch.manual_seed(seed)
    return Infiller(net=InfillNet(Config(len(VOCAB), d_model=32, n_layers=1, n_heads=2)))


def melody(n_bars=12, spb=16):
    return [GridNote(b * spb + p, 60 + (b + p) % 12, 2, 88) for b in range(n_bars) for p in (0, 4, 8, 12)]


def test_tokens_round_trip_melody_and_drums():
    notes = [GridNote(3, 64, 6, 100), GridNote(3, 60, 12, 70), GridNote(20, 67, 1, 30), GridNote(47, 71, 64, 127)]
    tokens = encode_bars(notes, 0, 3, 16, drums=False)
    assert tokens.count(VOCAB.BAR) == 3 and decode_bars(tokens, 0, 16) == sorted(
        GridNote(n.onset, n.pitch, n.duration, (n.velocity // 16) * 16 + 8) for n in notes)
    hits = [GridNote(0, 0, 1, 110), GridNote(0, 2, 1, 60), GridNote(6, 1, 1, 90)]
    drum_tokens = encode_bars(hits, 0, 1, 12, drums=True)
    assert VOCAB.dur0 not in drum_tokens and [(n.onset, n.pitch) for n in decode_bars(drum_tokens, 0, 12)] == [
        (0, 0), (0, 2), (6, 1)]


def test_fim_example_puts_prefix_and_suffix_before_the_middle():
    notes = melody()
    gap = Gap(5 * 16 + 4, 7 * 16, 16)  # from beat 2 of bar 5 to the end of bar 6
    prompt = fim_prompt(notes, gap, "melody", 3, context_bars=2)
    v = VOCAB
    assert prompt[:7] == [v.part0, v.meter0 + 16, v.dens0 + 3, v.len0 + 2, v.pos0 + 4, v.pos0 + 15, v.PRE]
    pre, suf = prompt.index(v.PRE), prompt.index(v.SUF)
    assert prompt[-1] == v.MID
    assert decode_bars(prompt[pre + 1 : suf], 3, 16) == [n for n in notes if 48 <= n.onset < gap.start]
    assert decode_bars(prompt[suf + 1 : -1], 6, 16) == [n for n in notes if gap.end <= n.onset < 9 * 16]
    middle = fim_middle(notes, gap, "melody")
    assert middle[-1] == v.EOS and decode_bars(middle, 5, 16) == [n for n in notes if gap.start <= n.onset < gap.end]
    assert fim_prompt(notes, gap, "melody", 3, 2, use_suffix=False)[-2:] == [v.SUF, v.MID]


def test_training_examples_fit_the_window_and_mark_the_middle():
    part = generator_data.Part("test", "piano", 16, melody(40))
    rng = np.random.default_rng(0)
    examples = [e for e in (generator_data.make_example(part, rng, 300) for _ in range(50)) if e]
    assert examples
    for tokens, mid in examples:
        assert len(tokens) <= 300 and tokens[mid - 1] == VOCAB.MID and tokens[-1] == VOCAB.EOS


def test_the_grammar_ends_with_eos_only_after_every_bar_of_the_gap():
    grammar = MiddleGrammar(Gap(16 + 8, 3 * 16 + 4, 16), "melody")
    assert grammar.mask().nonzero().flatten().tolist() == [VOCAB.BAR]
    grammar.push(VOCAB.BAR)
    allowed = grammar.mask()
    assert not allowed[VOCAB.EOS] and not allowed[VOCAB.pos0 + 7] and allowed[VOCAB.pos0 + 8]
    grammar.push(VOCAB.BAR)
    grammar.push(VOCAB.BAR)
    allowed = grammar.mask()
    assert allowed[VOCAB.EOS] and not allowed[VOCAB.BAR] and allowed[VOCAB.pos0 + 3] and not allowed[VOCAB.pos0 + 4]


@pytest.mark.parametrize("part", ["melody", "piano", "drums"])
def test_fills_start_inside_the_gap_and_end_by_its_end(part):
    notes = melody() if part != "drums" else [GridNote(s, s % 3, 1, 90) for s in range(0, 12 * 16, 2)]
    gap = Gap(4 * 16 + 6, 7 * 16 + 10, 16)
    fills = random_infiller().fill(notes, gap, part, variations=3, temperature=1.5, seed=1)
    assert len(fills) == 3 and any(fills)
    for fill in fills:
        assert all(gap.start <= n.onset and n.onset + n.duration <= gap.end for n in fill)
        if part == "melody":
            assert all(a.onset + a.duration <= b.onset for a, b in zip(fill, fill[1:]))


def test_a_long_dense_gap_is_written_in_pieces_that_fit_the_window():
    notes = [GridNote(s, 48 + s % 24, 1, 80) for s in range(0, 24 * 16)]  # a note every sixteenth
    gap = Gap(8 * 16, 16 * 16, 16)
    (fill,) = random_infiller().fill(notes, gap, "piano", seed=2)
    assert all(gap.start <= n.onset < gap.end for n in fill)


def test_the_shipped_model_joins_the_gap_and_scores_the_truth():
    infiller = Infiller()
    notes = melody(16)
    gap = Gap(6 * 16, 8 * 16, 16)
    (fill,) = infiller.fill(notes, gap, "melody", seed=0)
    assert fill and all(gap.start <= n.onset and n.onset + n.duration <= gap.end for n in fill)
    nats, count = infiller.nll(notes, gap, "melody", [n for n in notes if gap.start <= n.onset < gap.end])
    assert count > 0 and 0 < nats / count < 5


def test_part_detection():
    hits = [NoteEvent(i * 0.25, i * 0.25 + 0.05, (36, 42, 38, 42)[i % 4], 100) for i in range(16)]
    assert detect_part(hits) == "drums"
    assert detect_part(hits[:3], channels=[10, 10, 10]) == "drums"
    line = [NoteEvent(i * 0.5, i * 0.5 + 0.45, 60 + i % 7, 90) for i in range(16)]
    assert detect_part(line) == "melody"
    chords = [NoteEvent(i // 3, i // 3 + 0.9, 48 + 4 * (i % 3), 80) for i in range(24)]
    assert detect_part(chords) == "piano"


def test_fill_gap_in_seconds_stays_in_the_selection_on_a_tempo_change():
    tempo_map = TempoMap.from_dict({"bpm": 120, "markers": [{"time_s": 8.0, "bpm": 90}]})
    notes = [NoteEvent(i * 0.5, i * 0.5 + 0.4, 60 + i % 5, 90) for i in range(40) if not 12 <= i < 20]
    fill = fill_gap(random_infiller(), notes, tempo_map, 6.1, 9.9, FillOptions(variations=2, seed=4))
    assert fill.part == "melody" and len(fill.variations) == 2
    assert all(6.1 - 1e-9 <= n.start_s < n.end_s <= 9.9 + 1e-9 for v in fill.variations for n in v)
    with pytest.raises(RequestError, match="at most 8"):
        fill_gap(random_infiller(), notes, tempo_map, 0.0, 40.0, FillOptions())


def request_doc(**context):
    doc = {"protocol": 1, "id": "fill-1", "kind": "generate", "created_at": time.time(),
           "project": {"file": "", "dir": "/tmp", "media_dir": "/tmp"}, "tempo_map": {"bpm": 100},
           "time_selection": {"start_s": 4.0, "end_s": 8.0}, "options": {"variations": 2, "part": "auto"},
           "items": [], "context": {"track_guid": "{T}", "track": "Lead", "notes": [[0.0, 0.5, 60, 90, 1]]}}
    doc["context"].update(context)
    return doc


def test_generate_requests_are_validated():
    request = parse_request(request_doc())
    assert request.context.notes == [NoteEvent(0.0, 0.5, 60, 90)] and request.context.channels == [1]
    for bad, match in (([[0.0, 0.5, 60, 0, 1]], "velocity"), ([[1.0, 0.5, 60, 90, 1]], "start <= end"),
                       ([[0.0, 0.5, 60.5, 90, 1]], "pitch"), ([[0.0, 0.5, 60, 90]], r"\[start_s")):
        with pytest.raises(RequestError, match=match):
            parse_request(request_doc(notes=bad))
    doc = request_doc()
    doc["time_selection"] = None
    with pytest.raises(RequestError, match="time selection"):
        parse_request(doc)
    doc = request_doc()
    doc["options"] = {"temperature": 9}
    with pytest.raises(RequestError, match="temperature"):
        parse_request(doc)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "reascribe", *map(str, args)], capture_output=True, text=True)


def test_the_cli_writes_one_track_per_variation_and_never_overwrites(tmp_path):
    context = tmp_path / "lead.mid"
    notes = [NoteEvent(i * 0.3, i * 0.3 + 0.25, 62 + i % 5, 90) for i in range(64) if not 16 <= i < 32]
    midi_out.write_midi(context, Events(notes), TempoMap.constant(100))
    out = tmp_path / "fill.mid"
    done = run_cli("generate", "--context", context, "--start", 4.8, "--end", 9.6, "--out", out,
                   "--variations", 2, "--seed", 5)
    assert done.returncode == 0, done.stderr
    assert [t.name for t in mido.MidiFile(out).tracks[1:]] == ["fill 1", "fill 2"]
    events, _ = midi_out.read_events(out)
    assert events.notes and all(4.8 - 1e-3 <= n.start_s and n.end_s <= 9.6 + 1e-3 for n in events.notes)
    again = run_cli("generate", "--context", context, "--start", 4.8, "--end", 9.6, "--out", out)
    assert again.returncode == 1 and again.stderr.count("\n") == 1 and "already exists" in again.stderr
    broken = tmp_path / "broken.mid"
    broken.write_bytes(b"MThd nonsense")
    bad = run_cli("generate", "--context", broken, "--start", 1, "--end", 2, "--out", tmp_path / "x.mid")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "not a readable MIDI file" in bad.stderr


def randomised_net(seed=0, **cfg) -> InfillNet:
    """A tiny net whose segment, bar and density tables are random too (they start at zero)."""
    torch.manual_seed(seed)
    net = InfillNet(Config(len(VOCAB), **{"d_model": 32, "n_layers": 2, "n_heads": 2, **cfg})).eval()
    for table in (net.segment, net.bar, net.density):
        torch.nn.init.normal_(table.weight)
    return net


def somewhere(t: int) -> torch.Tensor:
    return torch.stack([torch.randint(0, len(SEGMENTS), (t,)), torch.randint(0, BAR_ROWS, (t,))], -1)


def test_left_padded_rows_give_the_logits_of_their_prompt_alone():
    net = randomised_net()
    a, b = torch.randint(6, len(VOCAB), (10,)), torch.randint(6, len(VOCAB), (6,))
    wa, wb, density = somewhere(10), somewhere(6), torch.tensor([2, 5])
    pad = torch.tensor([0, 4])
    batch = torch.stack([a, torch.cat([torch.full((4,), VOCAB.PAD), b])])
    where = torch.stack([wa, torch.cat([torch.zeros((4, 2), dtype=torch.long), wb])])
    step = torch.tensor([[[MIDDLE, 3]], [[MIDDLE, 4]]])
    with torch.inference_mode():
        caches = net.new_caches(2)
        first = net(batch, 10, where, density, caches, pad)[:, -1]
        second = net(torch.tensor([[7], [9]]), 10, step, density, caches, pad)[:, -1]
        alone = [net(a[None], 10, wa[None], density[:1])[0, -1], net(b[None], 6, wb[None], density[1:])[0, -1],
                 net(torch.cat([a, torch.tensor([7])])[None], 10, torch.cat([wa, step[0]])[None], density[:1])[0, -1],
                 net(torch.cat([b, torch.tensor([9])])[None], 6, torch.cat([wb, step[1]])[None], density[1:])[0, -1]]
    for got, want in zip([first[0], first[1], second[0], second[1]], alone):
        assert torch.allclose(got, want, atol=1e-5)


def test_a_prompt_read_once_and_shared_gives_every_row_its_own_continuation():
    net = randomised_net()
    prompt, where, density = torch.randint(6, len(VOCAB), (8,)), somewhere(8), torch.tensor([3, 3])
    steps = [torch.tensor([[7], [9]]), torch.tensor([[11, 12], [13, 7]]), torch.tensor([[40], [41]])]
    with torch.inference_mode():
        once = net.new_caches(1)
        net(prompt[None], 8, where[None], density[:1], once)
        for cache in once:
            cache.share(2)
        written = torch.empty((2, 0), dtype=torch.long)
        for tokens in steps:  # single steps, and two tokens at once (causal among the rows' own)
            at = torch.tensor([MIDDLE, 1]).repeat(2, tokens.shape[1], 1)
            got = net(tokens, 8, at, density, once)
            written = torch.cat([written, tokens], 1)
            t = written.shape[1]
            for row in range(2):  # each row read whole, without a cache
                whole = torch.cat([prompt, written[row]])[None]
                at_whole = torch.cat([where, torch.tensor([MIDDLE, 1]).repeat(t, 1)])[None]
                want = net(whole, 8, at_whole, density[row : row + 1])[0, -tokens.shape[1] :]
                assert torch.allclose(got[row], want, atol=1e-5)
            assert not torch.allclose(got[0], got[1])


def test_the_middle_sits_at_the_same_positions_whatever_the_prompt_length():
    torch.manual_seed(0)
    net = InfillNet(Config(len(VOCAB), d_model=32, n_layers=0, n_heads=2)).eval()  # no attention: a token
    middle = torch.tensor([40, 41, 42])  # and its position alone make its logits
    density = torch.tensor([3])
    with torch.inference_mode():
        short, long = (net(torch.cat([torch.randint(6, 30, (n,)), middle])[None], n, somewhere(n + 3)[None], density)
                       [0, -3:] for n in (5, 50))
        shifted = net(torch.cat([torch.randint(6, 30, (5,)), middle])[None], 6, somewhere(8)[None], density)[0, -3:]
    assert torch.equal(short, long)  # (the where tables start at zero)
    assert not torch.allclose(short, shifted)


def test_tokens_know_their_bar_of_the_gap_and_the_middle_its_density():
    notes = melody()
    gap = Gap(5 * 16 + 4, 7 * 16, 16)  # bars 5 and 6
    prompt = fim_prompt(notes, gap, "melody", 3, context_bars=2)
    middle = fim_middle(notes, gap, "melody")
    segments, bars, density = annotate(prompt + middle)
    assert density == 3
    v, mid, suf = VOCAB, len(prompt) - 1, prompt.index(VOCAB.SUF)
    bar_tokens = [i for i, t in enumerate(prompt + middle) if t == v.BAR]
    # Prefix bars 3, 4, 5, suffix bars 6, 7, 8, middle bars 5, 6: counted from the gap's first bar.
    assert [(segments[i], bars[i]) for i in bar_tokens] == [
        (1, bar_row(-2)), (1, bar_row(-1)), (1, bar_row(0)), (2, bar_row(1)), (2, bar_row(2)), (2, bar_row(3)),
        (MIDDLE, bar_row(0)), (MIDDLE, bar_row(1))]
    assert segments[: prompt.index(v.PRE) + 1] == [0] * 7 and segments[suf] == 0 and segments[mid] == MIDDLE
    # The sampler's rule for each token it writes gives the same rows as reading the whole sequence.
    grammar = MiddleGrammar(gap, "melody")
    for i, token in enumerate(middle[:-1], start=mid + 1):
        grammar.push(token)
        assert bars[i] == bar_row(grammar.bars - 1) and segments[i] == MIDDLE


def test_zero_where_tables_leave_a_warm_started_model_as_it_was(tmp_path):
    from training.generator import warm_start

    net = randomised_net(n_layers=1)
    earlier = {k: v for k, v in net.state_dict().items() if k.split(".")[0] not in ("segment", "bar", "density")}
    torch.save({"config": net.cfg.as_dict(), "net": earlier}, tmp_path / "earlier.pt")
    warmed = InfillNet(net.cfg).eval()
    warm_start(warmed, tmp_path / "earlier.pt")
    tokens = torch.randint(6, len(VOCAB), (1, 12))
    with torch.inference_mode():
        logits = [warmed(tokens, 12, somewhere(12)[None], torch.tensor([d]))[0] for d in (0, 7)]
        plain = net(tokens, 12, torch.zeros((1, 12, 2), dtype=torch.long), torch.tensor([0]))[0]
    assert torch.equal(logits[0], logits[1])  # where a token sits and the density change nothing yet
    net.segment.weight.data.zero_(), net.bar.weight.data.zero_(), net.density.weight.data.zero_()
    with torch.inference_mode():
        assert torch.allclose(logits[0], net(tokens, 12, somewhere(12)[None], torch.tensor([4]))[0])
    assert not torch.allclose(logits[0], plain)  # (the random tables did matter)
    torch.save({"config": net.cfg.as_dict(), "net": {**earlier, "extra.weight": torch.zeros(1)}}, tmp_path / "odd.pt")
    with pytest.raises(ValueError, match="does not fit"):
        warm_start(InfillNet(net.cfg), tmp_path / "odd.pt")


def test_the_context_gives_key_groove_and_joins():
    c_major = [GridNote(s * 4, 60 + (0, 2, 4, 5, 7, 9, 11)[s % 7], 4, 80) for s in range(64)]
    assert key_scale(c_major) == {0, 2, 4, 5, 7, 9, 11}
    gap = Gap(6 * 16, 8 * 16, 16)
    fit = read_context(c_major, gap, "melody")
    assert fit.scale == {0, 2, 4, 5, 7, 9, 11} and fit.before == c_major[23].pitch and fit.after == c_major[32].pitch
    in_key = [GridNote(gap.start + 4 * i, 64 + (0, 1, 3, 5, 7, 8, 10, 12)[i % 8], 4, 80) for i in range(8)]
    off_key = [GridNote(n.onset, n.pitch + 1, 4, 80) for n in in_key]
    assert fit.cost(in_key) < fit.cost(off_key)
    beat = [GridNote(b * 16 + s, c, 1, 90) for b in range(12) for s, c in ((0, 0), (4, 1), (8, 0), (12, 1))]
    groove = read_context(beat, gap, "drums")
    assert groove.pattern[0, 0] == 1 and groove.pattern[1, 4] == 1 and groove.pattern.sum() == 4


def test_guidance_keeps_an_untrained_model_in_key_and_in_the_groove():
    infiller = random_infiller()
    infiller.key_guidance, infiller.groove_guidance = 40.0, 40.0
    notes, gap = melody(12), Gap(4 * 16, 6 * 16, 16)
    scale = read_context(notes, gap, "melody").scale
    for fill in infiller.fill(notes, gap, "melody", variations=3, temperature=1.5, seed=3):
        assert fill and all(n.pitch % 12 in scale for n in fill)
    beat = [GridNote(b * 16 + s, c, 1, 90) for b in range(12) for s, c in ((0, 0), (4, 1), (8, 0), (12, 1))]
    for fill in infiller.fill(beat, gap, "drums", variations=3, temperature=1.5, seed=3):
        assert fill and all((n.onset % 16, n.pitch) in {(0, 0), (4, 1), (8, 0), (12, 1)} for n in fill)


def test_class_guidance_plays_the_harmony_where_the_song_repeats():
    chords = ((0, 4, 7), (5, 9, 0), (7, 11, 2))  # C F G, one bar each: a 3-bar cycle, not a 4- or 8-bar phrase
    notes = [GridNote(b * 16 + 4 * i, 60 + chords[b % 3][i % 3], 4, 80) for b in range(24) for i in range(4)]
    gap = Gap(9 * 16, 11 * 16, 16)  # bars 9 (C) and 10 (F); the notes there are replaced, never read
    notes = [n for n in notes if not gap.start <= n.onset < gap.end]
    notes += [GridNote(gap.start + i, 61 + i % 5, 1, 80) for i in range(32)]
    fit = read_context(notes, gap, "melody")
    assert set(np.flatnonzero(fit.bar_classes[0] > 0.01)) == {0, 4, 7}
    assert set(np.flatnonzero(fit.bar_classes[1] > 0.01)) == {0, 5, 9}
    assert set(np.flatnonzero(fit.classes > 0.01)) == {0, 4, 5, 7, 9}
    infiller = random_infiller()
    infiller.class_guidance, infiller.key_guidance = 40.0, 0.0
    for fill in infiller.fill(notes, gap, "melody", variations=3, temperature=1.5, seed=3):
        assert fill
        for n in fill:
            assert n.pitch % 12 in chords[n.onset // 16 % 3]


def test_the_ranking_prefers_each_bar_in_the_harmony_of_its_repeats():
    chords = ((0, 4, 7), (5, 9, 0), (7, 11, 2))
    notes = [GridNote(b * 16 + 4 * i, 60 + chords[b % 3][i % 3], 4, 80) for b in range(24) for i in range(4)]
    gap = Gap(9 * 16, 11 * 16, 16)  # bars 9 (C) and 10 (F)
    fit = read_context([n for n in notes if not gap.start <= n.onset < gap.end], gap, "melody")

    def fill(first, second):  # a C to start and end on, the bars' own notes between
        pitches = [72, *first, *second, 72]
        return [GridNote(gap.start + 6 * i, p, 4, 80) for i, p in enumerate(pitches)]

    right, swapped = fill((64, 67), (65, 69)), fill((65, 69), (64, 67))
    assert class_histogram(right, False).tolist() == class_histogram(swapped, False).tolist()
    assert fit.cost(right) < fit.cost(swapped)


def test_repeats_read_only_what_is_known_and_give_way_without_notes_next_to_the_gap():
    chords = ((0, 4, 7), (5, 9, 0), (7, 11, 2))
    notes = [GridNote(b * 16 + 4 * i, 60 + chords[b % 3][i % 3], 4, 80) for b in range(24) for i in range(4)]
    gap = Gap(9 * 16, 11 * 16, 16)
    before = [n for n in notes if n.onset < gap.start]  # a continuation: the bars before alone still repeat
    whole, by_bar = repeat_histograms(before, gap)
    assert set(np.flatnonzero(by_bar[0] > 0.01)) == {0, 4, 7} and set(np.flatnonzero(by_bar[1] > 0.01)) == {0, 5, 9}
    assert whole.sum() == pytest.approx(1.0)
    early = [n for n in notes if n.onset < 6 * 16]  # nothing in the 2 bars before the gap, nothing after
    assert repeat_histograms(early, gap) is None
    fit = read_context(early, gap, "melody")  # so the pitch classes of the 4 bars each side are the target
    context = class_histogram([n for n in early if n.onset >= 5 * 16], False)
    assert np.allclose(fit.classes, context) and np.allclose(fit.bar_classes, context)


def test_join_guidance_leaps_into_the_gap_as_the_join_model_asks():
    gap = Gap(4 * 16, 6 * 16, 16)
    grammar = MiddleGrammar(gap, "piano")
    for token in (VOCAB.MID, VOCAB.BAR, VOCAB.pos0 + 2, VOCAB.pitch0 + 48, VOCAB.dur0, VOCAB.vel0):
        grammar.push(token)
    assert grammar.in_first_onset()
    grammar.push(VOCAB.pos0 + 6)
    assert not grammar.in_first_onset()
    chords = melody(12) + [GridNote(n.onset, n.pitch - 12, 2, 70) for n in melody(12)]
    for part, notes in (("melody", melody(12)), ("piano", chords)):
        fit = read_context(notes, gap, part)
        misses = {}
        for join in (0.0, 40.0):
            infiller = random_infiller()
            infiller.join_guidance = join
            fills = infiller.fill(notes, gap, part, variations=4, temperature=1.0, seed=2)
            misses[join] = [abs(abs(top_voice(f)[0].pitch - fit.before) - fit.leaps[0]) for f in fills]
        assert max(misses[40.0]) <= 1.0 and max(misses[0.0]) > 3


def test_which_drum_guidance_moves_likelihood_between_drums_only():
    beat = [GridNote(b * 16 + s, c, 1, 90) for b in range(12) for s, c in ((0, 0), (0, 2), (4, 1), (8, 0), (12, 1))]
    gap = Gap(4 * 16, 6 * 16, 16)
    guidance = GuidanceTable(read_context(beat, gap, "drums"), key=1.5, groove=2.0)
    grammar = MiddleGrammar(gap, "drums")
    for token in (VOCAB.MID, VOCAB.BAR, VOCAB.pos0, VOCAB.drum0, VOCAB.vel0 + 5):  # a kick at step 0
        grammar.push(token)
    torch.manual_seed(0)
    logits = torch.randn(1, len(VOCAB)).masked_fill(~grammar.mask(), float("-inf"))
    guided = guidance.apply(logits.clone(), [grammar])
    unguided_notes = logits + guidance.table[guidance.state(grammar)]  # whether: the groove's choices only
    drums = slice(VOCAB.drum0, VOCAB.drum0 + 9)
    assert torch.logsumexp(guided[0, drums], -1) == pytest.approx(float(torch.logsumexp(unguided_notes[0, drums], -1)))
    assert int(guided[0, drums].argmax()) == 2  # which: the hi-hat the context plays with the kick


def test_drums_are_chosen_in_class_order_as_the_context_plays_them():
    # A hi-hat on every eighth, a kick on beat 1 in every bar and on beat 3 in every other bar.
    beat = [GridNote(b * 16 + s, 2, 1, 90) for b in range(12) for s in range(0, 16, 2)]
    beat += [GridNote(b * 16, 0, 1, 90) for b in range(12)] + [GridNote(b * 16 + 8, 0, 1, 90) for b in range(0, 12, 2)]
    gap = Gap(4 * 16, 6 * 16, 16)
    which = GuidanceTable(read_context(beat, gap, "drums"), key=0.0, groove=1.0).which
    first, after_kick = which[1 + 8, 0].tolist(), which[1 + 8, 1].tolist()  # step 8: nothing there yet, then a kick
    # Kick first in half the bars, hi-hat first (no kick) in the other half.
    assert first[0] == pytest.approx(first[2], abs=0.01) and first[1] < first[0] - 1
    assert after_kick[2] > after_kick[1] + 1 and first[2] > float(which[1 + 0, 0, 2]) + 1  # on step 0 the kick leads


def test_stack_guidance_stacks_notes_while_a_bar_is_behind_its_density():
    beat = [GridNote(b * 16 + s, c, 1, 90) for b in range(12) for s in range(0, 16, 2) for c in (0, 2, 4, 6)]
    gap, per_onset = Gap(4 * 16, 6 * 16, 16), {}
    for stack in (0.0, 3.0):
        infiller = random_infiller()  # writes one or two drums an onset without guidance
        infiller.stack_guidance = stack
        infiller.groove_guidance = infiller.density_guidance = infiller.pace_guidance = 0.0
        fills = infiller.fill(beat, gap, "drums", variations=4, temperature=1.0, seed=5)
        per_onset[stack] = np.mean([len(f) / len({n.onset for n in f}) for f in fills])
    assert per_onset[3.0] > per_onset[0.0] + 0.5


def test_warm_start_keeps_the_positions_of_a_median_prompt(tmp_path):
    from training.generator import MEDIAN_PROMPT, warm_start

    cfg = Config(len(VOCAB), d_model=32, n_layers=1, n_heads=2, max_len=300)
    old = InfillNet(cfg).state_dict()
    old["position.weight"] = torch.randn(cfg.max_len, cfg.d_model)  # counted from the sequence's start
    torch.save({"config": cfg.as_dict(), "net": old}, tmp_path / "old.pt")
    net = InfillNet(cfg)
    warm_start(net, tmp_path / "old.pt")
    # A prompt of the median length: token k sat at position k before and sits at k + max_len - prompt now.
    k = torch.arange(cfg.max_len)
    assert torch.equal(net.position.weight[k + cfg.max_len - MEDIAN_PROMPT], old["position.weight"][k])
    assert torch.equal(net.embed.weight, old["embed.weight"])


def test_each_training_stage_stretches_the_schedule_to_its_end():
    from training.generator import staged_rate

    stages, steps = [8, 16], 90
    assert staged_rate(0, stages, steps) < 0.02 and staged_rate(72, stages, steps) == pytest.approx(1.0, abs=0.03)
    assert staged_rate(719, stages, steps) == pytest.approx(0.1, abs=0.01)  # the end of stage 1
    assert staged_rate(720, stages, steps) == pytest.approx(0.55, abs=0.01)  # halfway along a 16-epoch cosine
    assert staged_rate(1439, stages, steps) == pytest.approx(0.1, abs=0.01)



def test_the_fill_density_reads_the_bars_next_to_the_gap_the_four_each_side_and_a_phrase_away():
    from reascribe.models.generator import density

    spb = 16
    # Bar 0: 8 notes, bars 1-3: 4 each, bar 4 (the gap): 16, bars 5-12: 2 each, the last in bar 12.
    per_bar = (8, 4, 4, 4, 16, *[2] * 8)
    notes = [GridNote(b * spb + s, 60, 1, 80) for b, k in enumerate(per_bar) for s in range(0, 16, 16 // k)]
    gap = Gap(4 * spb, 5 * spb, spb)
    # The span 4 bars away: bar 0 (2.0) and bar 8 (0.5); 8 bars away only bar 12 lies in the part.
    assert density.features(notes, gap) == ([1.0, 0.5, 1.25, 0.5, 1.25, 0.5, 1.0], True)
    # Before alone: bar 0 is 4 bars before; 8 bars before is outside the part, so the 4 bars before stand in.
    before = [n for n in notes if n.onset < gap.start]
    assert density.features(before, gap) == ([1.0, 1.25, 2.0, 1.25, 1.0], False)
    # A span overlapping the gap is not read: 4 bars away from a 6-bar gap, the 4-bar spans stand in.
    long_gap = Gap(4 * spb, 10 * spb, spb)
    assert density.features(notes, long_gap)[0][4] == pytest.approx((1.25 + 0.5) / 2)
    # After the gap only what is there counts: one bar of 2 notes at the part's end is 0.5 per beat.
    assert density.features(notes[: -2 * 7], gap)[0][3] == 0.5
    # A gap inside a bar with nothing after it is a continuation, though its bar goes on past the gap.
    assert density.features(notes[:4], Gap(4, 8, spb))[1] is False
    assert density.predict([], gap, "melody") == density.EMPTY_CONTEXT
    for part in ("melody", "piano", "drums"):
        both, alone = density.coefficients()[part]["both"], density.coefficients()[part]["before"]
        assert len(both) == 7 and len(alone) == 5
        x = [1.0, 0.5, 1.25, 0.5, 1.25, 0.5, 1.0]
        assert density.predict(notes, gap, part) == pytest.approx(max(0.0, float(both @ x)))


def test_the_join_leaps_read_the_bars_each_side_of_the_gap():
    from reascribe.models.generator import joins

    spb = 16
    # Top voices: bar 2 (before the gap) plays 60 then 67; bar 3 is the gap; bar 4 plays 64 then 72, bar 5 71.
    before = [GridNote(0, 62, 4, 80), GridNote(8, 65, 4, 80), GridNote(32, 60, 4, 80), GridNote(40, 67, 4, 80)]
    after = [GridNote(64, 64, 4, 80), GridNote(72, 72, 4, 80), GridNote(80, 71, 4, 80)]
    gap = Gap(3 * spb, 4 * spb, spb)
    # Start: 67 -> 60 copying the bar before, 67 -> 64 copying the bar after. End: 67 -> 64 and 72 -> 64.
    # The usual leap across a bar line, each side of the gap: 65 -> 60 and 72 -> 71, median 3.
    assert joins.features(before, after, gap) == ([7, 3, 3.0, 1.0], [3, 8, 3.0, 1.0])
    assert joins.features(before, [], gap) == ([7, 5.0, 1.0], [])
    assert joins.features(before[:2], after, gap) is None  # nothing in the bar before the gap
    weights = joins.coefficients()
    for part in ("melody", "piano"):
        start, end = joins.predict(before, after, gap, part)
        assert start == pytest.approx(max(0.0, float(weights[part]["start"] @ [7, 3, 3.0, 1.0])))
        assert end == pytest.approx(max(0.0, float(weights[part]["end"] @ [3, 8, 3.0, 1.0])))
        continuation = joins.predict(before, [], gap, part)
        assert continuation[0] == pytest.approx(max(0.0, float(weights[part]["start, nothing after"] @ [7, 5.0, 1])))
        assert continuation[1] is None
    # Without the bar before: the usual leaps.
    assert joins.predict(before[:2], after, gap, "piano") == (1.0, 1.0)
    # Piano parts repeat their bars, so copying them is the strongest clue; a melody steps into the gap.
    assert weights["piano"]["start"][0] > 0.3 and weights["piano"]["end"][1] > 0.3
    assert abs(weights["melody"]["start"][-1] - 2.0) < 0.5


def test_least_absolute_deviations_ignore_outliers():
    from training.lad import fit_lad

    rng = np.random.default_rng(0)
    x = np.column_stack([rng.uniform(0, 4, 400), np.ones(400)])
    y = 0.7 * x[:, 0] + 0.2 + rng.laplace(0, 0.05, 400)
    y[:40] += 10.0  # a tenth of the gaps far denser than their context
    assert fit_lad(x, y) == pytest.approx([0.7, 0.2], abs=0.03)
    assert np.linalg.lstsq(x, y, rcond=None)[0][1] > 0.8  # least squares is pulled away


def test_the_density_model_reads_the_phrase_spans_only_where_they_lower_the_validation_error():
    from training.generator_density import fit

    def rows(seed: int, phrase_matters: bool) -> list:
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(400):
            x = [*rng.uniform(0, 4, 6), 1.0]  # bar before, bar after, 4 bars each side, the phrase spans
            truth = 0.5 * x[0] + (0.5 * x[4] if phrase_matters else 0.5 * x[1]) + rng.laplace(0, 0.1)
            alone = [x[0], x[2], x[4], x[5], 1.0]
            out.append((x, True, truth, (x[2] + x[3]) / 2, alone))
        return out

    weights, read = fit(rows(0, True), rows(1, True))
    assert read == {"both": True, "before": True} and weights["both"][4] == pytest.approx(0.5, abs=0.05)
    weights, read = fit(rows(0, False), rows(1, False))
    assert read["both"] is False and list(weights["both"][4:6]) == [0.0, 0.0]
    assert weights["both"][1] == pytest.approx(0.5, abs=0.05)
