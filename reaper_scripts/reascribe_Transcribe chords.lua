-- @noindex
-- reascribe: Transcribe chords (part of the "reascribe: Transcribe piano" package)
--
-- Select audio items and run it: each item gets a new MIDI take with the chords voiced (bass note plus
-- the chord around middle C), its name gives the key, and the chord symbols appear as take markers on
-- it, or as project regions (chord_markers = 'regions' in reascribe_settings.lua; 'none' for neither).

local SCRIPT_DIR = debug.getinfo(1, 'S').source:match('^@?(.*[/\\])') or ''
package.path = SCRIPT_DIR .. '?.lua;' .. package.path

-- Settings left out are left to the daemon's defaults; it refuses bad values with a sentence.
require('reascribe.transcribe').main(SCRIPT_DIR, 'chords', function(settings)
  return { channel = settings.chord_channel, markers = settings.chord_markers }
end)
