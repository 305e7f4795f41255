-- @noindex
-- reascribe: Bridge (part of the "reascribe: Transcribe piano" package)
--
-- Runs in the background: applies results from the daemon as they arrive, prints job progress to
-- the console and keeps bridge.heartbeat fresh. Run it again to stop it. Never opens a dialog.
-- Started by dofile (e.g. from Scripts/__startup.lua), it starts itself as its action instead.

local SCRIPT_DIR = debug.getinfo(1, 'S').source:match('^@?(.*[/\\])') or ''
package.path = SCRIPT_DIR .. '?.lua;' .. package.path

local actions = require('reascribe.actions')
local bridge = require('reascribe.bridge')
local spool = require('reascribe.spool')

local TERMINATE_ON_RELAUNCH, TOGGLE_ON = 1, 4

local _, _, section, cmd = reaper.get_action_context()

-- Not run as an action (dofile from __startup.lua or another script): REAPER knows this run by the
-- file that started it, so the toggle state and "run the action again to stop it" would not reach
-- it. Start the action instead, unless it runs already, and end here.
if cmd <= 0 then
  local action = actions.command_id(SCRIPT_DIR, actions.BRIDGE)
  if action ~= 0 then
    if not actions.is_on(action) then reaper.Main_OnCommand(action, 0) end
    reaper.defer(function() end)
    return
  end
end

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

local _, dir = spool.configure(SCRIPT_DIR, console)
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
