-- @noindex
-- reascribe: Transcribe drums (part of the "reascribe: Transcribe piano" package)
--
-- Select audio items and run it: each item gets a new MIDI take with a short note per drum hit, on
-- the General MIDI drum map and channel 10 unless reascribe_settings.lua says otherwise
-- (drum_note_length, drum_channel, drum_note_map).

local SCRIPT_DIR = debug.getinfo(1, 'S').source:match('^@?(.*[/\\])') or ''
package.path = SCRIPT_DIR .. '?.lua;' .. package.path

-- Settings left out are left to the daemon's defaults; it refuses bad values with a sentence.
require('reascribe.transcribe').main(SCRIPT_DIR, 'drums', function(settings)
  return {
    note_length = settings.drum_note_length, channel = settings.drum_channel, note_map = settings.drum_note_map,
  }
end)
