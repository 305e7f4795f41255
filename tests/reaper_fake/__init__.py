"""A fake REAPER for running reascribe's ReaScripts in real Lua 5.4 (lupa) under pytest.

    from reaper_fake import FakeReaper
    fake = FakeReaper(tmp_path, env={"REASCRIBE_SPOOL": str(spool)})
    track = fake.add_track("Keys")
    item, take = fake.add_audio_item(track, tmp_path / "project/Media/piano.wav", position_s=10, length_s=6)
    fake.run_action("reascribe_Transcribe piano.lua")
    fake.run_ticks(30)
    fake.assert_clean()
"""

from .api import ReaperError
from .fake import CCAt, FakeReaper, MessageBox, NoteAt, ScriptInstance, UndoPoint
from .gfx import Drawn, FakeGfx
from .model import PPQ, Item, MidiData, Project, Source, Take, TempoMap, Track

__all__ = [
    "CCAt", "Drawn", "FakeGfx", "FakeReaper", "Item", "MessageBox", "MidiData", "NoteAt", "PPQ", "Project",
    "ReaperError", "ScriptInstance", "Source", "Take", "TempoMap", "Track", "UndoPoint",
]
