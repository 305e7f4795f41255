-- @noindex
-- reascribe: Bridge (part of the "reascribe: Transcribe piano" package)
--
-- Runs in the background: applies results from the daemon as they arrive, prints job progress to
-- the console and keeps bridge.heartbeat fresh. Run it again to stop it. Never opens a dialog.

local SCRIPT_DIR = debug.getinfo(1, 'S').source:match('^@?(.*[/\\])') or ''
package.path = SCRIPT_DIR .. '?.lua;' .. package.path

local actions = require('reascribe.actions')
local bridge = require('reascribe.bridge')
local spool = require('reascribe.spool')

local TERMINATE_ON_RELAUNCH, TOGGLE_ON = 1, 4

local _, _, section, cmd = reaper.get_action_context()

local function console(line)
  reaper.ShowConsoleMsg(line .. '\n')
end

local function set_toggle(state)
  if cmd > 0 then
    reaper.SetToggleCommandState(section, cmd, state)
    reaper.RefreshToolbar2(section, cmd)
  end
end

if reaper.set_action_options then
  reaper.set_action_options(TERMINATE_ON_RELAUNCH | TOGGLE_ON)
else
  set_toggle(1)
end

local settings, settings_error = spool.read_settings(SCRIPT_DIR)
if settings_error then console('reascribe: ignoring broken settings: ' .. settings_error) end
local dir = spool.resolve_dir(settings)
local worker = bridge.new(dir, actions.named(actions.command_id(SCRIPT_DIR, actions.APPLY)), console)

reaper.atexit(function()
  worker:stop()
  set_toggle(0)
end)

local function loop()
  local ok, keep = xpcall(worker.tick, debug.traceback, worker, reaper.time_precise())
  if not ok then
    console('reascribe: the bridge stopped after an error:\n' .. tostring(keep))
  elseif keep then
    reaper.defer(loop)
  end
end

local ok, err = spool.ensure(dir)
if ok then
  reaper.ShowConsoleMsg('!SHOW:reascribe: bridge running (spool ' .. dir .. ').\n')
  loop()
else
  console('reascribe: the bridge cannot use its spool folder: ' .. tostring(err))
  reaper.defer(function() end)
end
