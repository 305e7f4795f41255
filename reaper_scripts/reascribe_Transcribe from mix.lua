-- @noindex
-- reascribe: Transcribe from mix (part of the "reascribe: Transcribe piano" package)
--
-- Select audio items of full mixes and run it: each item is separated, its drum stem transcribed as
-- drums and its harmonic stem as piano, and the MIDI appears on new tracks "<item> drums" and
-- "<item> piano" under the item's track, aligned with it. The piano and drum settings of
-- reascribe_settings.lua apply, and separation_backend chooses the separation.

local SCRIPT_DIR = debug.getinfo(1, 'S').source:match('^@?(.*[/\\])') or ''
package.path = SCRIPT_DIR .. '?.lua;' .. package.path

require('reascribe.transcribe').main(SCRIPT_DIR, 'mix', function(settings)
  return {
    backend = settings.separation_backend,
    kinds = { 'drums', 'piano' },
    drums = { note_length = settings.drum_note_length, channel = settings.drum_channel, note_map = settings.drum_note_map },
    piano = { pedal_extend = settings.pedal_extend == true, soft_pedal = settings.soft_pedal ~= false },
  }
end, {
  action = 'Transcribe from mix',
  job = 'transcription from the mix',
  outcome = "The MIDI appears on new tracks under the item's track as soon as the daemon has transcribed it.",
})
