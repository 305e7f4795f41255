-- @noindex
-- reascribe: Generate fill (part of the "reascribe: Transcribe piano" package)
--
-- Select a track with a MIDI part, make a time selection over a gap in it and run it: a new MIDI item
-- fills the selection so that it joins the notes before and after, one take per variation (switch with
-- Take > Next take). With nothing after the selection it continues the part. Settings in
-- reascribe_settings.lua: fill_variations, fill_temperature, fill_density, fill_part.

local SCRIPT_DIR = debug.getinfo(1, 'S').source:match('^@?(.*[/\\])') or ''
package.path = SCRIPT_DIR .. '?.lua;' .. package.path

require('reascribe.fill').main(SCRIPT_DIR)
