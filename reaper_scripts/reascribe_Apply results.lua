-- @noindex
-- reascribe: Apply results (part of the "reascribe: Transcribe piano" package)
--
-- Applies every result waiting in the spool's outbox now (the bridge does the same in the
-- background). The daemon can run it through OSC (/action/_RS...) when a result is ready.

local SCRIPT_DIR = debug.getinfo(1, 'S').source:match('^@?(.*[/\\])') or ''
package.path = SCRIPT_DIR .. '?.lua;' .. package.path

local apply = require('reascribe.apply')
local spool = require('reascribe.spool')

local TERMINATE_ON_RELAUNCH, RELAUNCH = 1, 2 -- the daemon may poke twice in a row: restart, no dialog

local function console(line)
  reaper.ShowConsoleMsg(line .. '\n')
end

if reaper.set_action_options then reaper.set_action_options(TERMINATE_ON_RELAUNCH | RELAUNCH) end
local _, dir = spool.configure(SCRIPT_DIR, console)
for _, line in ipairs(apply.all(dir)) do console(line) end
reaper.defer(function() end) -- results add their own undo points; no extra one for the script
