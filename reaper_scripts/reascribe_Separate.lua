-- @noindex
-- reascribe: Separate (part of the "reascribe: Transcribe piano" package)
--
-- Select audio items and run it: the stems of each item (drums, harmonic and residual; with
-- separation_backend = "demucs" in reascribe_settings.lua drums, bass, other and vocals) appear on new
-- tracks in a folder under the item's track, aligned with it. The item itself is left as it is; the
-- stems are WAV files in the project's media folder, under reascribe/.

local SCRIPT_DIR = debug.getinfo(1, 'S').source:match('^@?(.*[/\\])') or ''
package.path = SCRIPT_DIR .. '?.lua;' .. package.path

require('reascribe.transcribe').main(SCRIPT_DIR, 'separate', function(settings)
  return { backend = settings.separation_backend }
end, {
  action = 'Separate',
  job = 'separation',
  outcome = "The stems appear on new tracks under the item's track as soon as the daemon has separated them.",
})
