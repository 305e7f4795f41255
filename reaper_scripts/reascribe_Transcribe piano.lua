-- @description reascribe: Transcribe piano and drums (new MIDI takes from audio items)
-- @version 0.1.0
-- @author reascribe
-- @about
--   # reascribe
--
--   Select audio items and run *reascribe: Transcribe piano*, *reascribe: Transcribe drums* or
--   *reascribe: Transcribe chords*: each item gets a new MIDI take placed on the project's tempo map.
--   A piano take has the notes, their velocities, the sustain pedal (CC64) and the soft pedal (CC67);
--   a drum take has a short note per hit (kick, snare, hi-hats, toms, crash, ride) on the General MIDI
--   drum map, on channel 10; a chord take has each chord voiced (bass note and chord), its name gives
--   the key, and the chord symbols appear as take markers or regions. The
--   work is done by the reascribe daemon (`reascribe daemon`, installed with pip); REAPER never waits
--   for it. *reascribe: Separate* puts each item's stems (drums, harmonic, residual) on new tracks in a
--   folder under the item's track; *reascribe: Transcribe from mix* separates first and adds a drums and
--   a piano MIDI track under the item's track. *reascribe: Generate fill* fills the time selection of a MIDI
--   track with a new item that joins the notes before and after it, one take per variation.
--   *reascribe: Bridge* runs in the background and adds each result in one undo step;
--   *reascribe: Show jobs* shows progress and cancels jobs; *reascribe: Apply results* applies
--   waiting results at once.
--
--   Run `reascribe install-reaper` once: it tells these scripts where the daemon's spool folder is
--   (`Scripts/reascribe/reascribe_settings.lua` in REAPER's resource folder, which also sets
--   `pedal_extend`, `soft_pedal` and the drum note length, channel and note map). Without it they use
--   `$REASCRIBE_SPOOL` or `~/.reascribe/spool` (`%APPDATA%\reascribe\spool` on Windows).
-- @provides
--   [main] .
--   [main] reascribe_Transcribe drums.lua
--   [main] reascribe_Transcribe chords.lua
--   [main] reascribe_Separate.lua
--   [main] reascribe_Transcribe from mix.lua
--   [main] reascribe_Generate fill.lua
--   [main] reascribe_Bridge.lua
--   [main] reascribe_Apply results.lua
--   [main] reascribe_Show jobs.lua
--   [nomain] reascribe_Register actions.lua
--   [nomain] reascribe/actions.lua
--   [nomain] reascribe/apply.lua
--   [nomain] reascribe/bridge.lua
--   [nomain] reascribe/chords.lua
--   [nomain] reascribe/context.lua
--   [nomain] reascribe/fill.lua
--   [nomain] reascribe/jobs.lua
--   [nomain] reascribe/json.lua
--   [nomain] reascribe/spool.lua
--   [nomain] reascribe/tempo.lua
--   [nomain] reascribe/tracks.lua
--   [nomain] reascribe/transcribe.lua
-- @changelog
--   First release: piano transcription (notes, velocities, sustain and soft pedal) and drum
--   transcription (General MIDI drum notes on channel 10) applied as new takes through a background
--   bridge, with a job window and one undo step per result.

local SCRIPT_DIR = debug.getinfo(1, 'S').source:match('^@?(.*[/\\])') or ''
package.path = SCRIPT_DIR .. '?.lua;' .. package.path

require('reascribe.transcribe').main(SCRIPT_DIR, 'piano', function(settings)
  return { pedal_extend = settings.pedal_extend == true, soft_pedal = settings.soft_pedal ~= false }
end)
