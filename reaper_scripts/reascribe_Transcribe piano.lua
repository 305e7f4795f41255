-- @description reascribe: Transcribe piano (notes and sustain pedal as a new MIDI take)
-- @version 0.1.0
-- @author reascribe
-- @about
--   # reascribe
--
--   Select audio items and run *reascribe: Transcribe piano*: each item gets a new MIDI take with
--   the piano notes, their velocities, the sustain pedal (CC64) and the soft pedal (CC67), placed on
--   the project's tempo map. The work is done by the reascribe daemon (`reascribe daemon`, installed
--   with pip); REAPER never waits for it. *reascribe: Bridge* runs in the background and adds each
--   result in one undo step; *reascribe: Show jobs* shows progress and cancels jobs; *reascribe:
--   Apply results* applies waiting results at once.
--
--   Run `reascribe install-reaper` once: it tells these scripts where the daemon's spool folder is
--   (`Scripts/reascribe/reascribe_settings.lua` in REAPER's resource folder, which also sets
--   `pedal_extend` and `soft_pedal`). Without it they use `$REASCRIBE_SPOOL` or `~/.reascribe/spool`
--   (`%APPDATA%\reascribe\spool` on Windows).
-- @provides
--   [main] .
--   [main] reascribe_Bridge.lua
--   [main] reascribe_Apply results.lua
--   [main] reascribe_Show jobs.lua
--   [nomain] reascribe_Register actions.lua
--   [nomain] reascribe/actions.lua
--   [nomain] reascribe/apply.lua
--   [nomain] reascribe/bridge.lua
--   [nomain] reascribe/context.lua
--   [nomain] reascribe/jobs.lua
--   [nomain] reascribe/json.lua
--   [nomain] reascribe/spool.lua
--   [nomain] reascribe/tempo.lua
-- @changelog
--   First release: piano transcription (notes, velocities, sustain and soft pedal) applied as a
--   new take through a background bridge, with a job window and one undo step per result.

local SCRIPT_DIR = debug.getinfo(1, 'S').source:match('^@?(.*[/\\])') or ''
package.path = SCRIPT_DIR .. '?.lua;' .. package.path

local actions = require('reascribe.actions')
local apply = require('reascribe.apply')
local context = require('reascribe.context')
local json = require('reascribe.json')
local spool = require('reascribe.spool')
local tempo = require('reascribe.tempo')

local KIND = 'piano'
local TITLE = 'reascribe'
local TTL_S = 86400 -- a request older than a day fails as expired
local DAEMON_HINT_KEY = 'daemon_hint_shown' -- ExtState: the no-daemon dialog was shown for this outage
local MB_OK = 0
local TERMINATE_ON_RELAUNCH, RELAUNCH = 1, 2 -- set_action_options: a quick second run restarts the action

local transcribe = {}

local function console(line)
  reaper.ShowConsoleMsg(line .. '\n')
end

function transcribe.request(proj, file, items, settings)
  return {
    protocol = spool.PROTOCOL,
    id = spool.new_id(),
    kind = KIND,
    created_at = os.time(),
    ttl_s = TTL_S,
    client = 'REAPER ' .. reaper.GetAppVersion(),
    project = context.project(proj, file),
    tempo_map = tempo.map(proj),
    time_selection = context.time_selection(proj),
    options = { pedal_extend = settings.pedal_extend == true, soft_pedal = settings.soft_pedal ~= false },
    items = items,
  }
end

-- Tell the user once per outage how to start the daemon (this action is user-triggered, so a
-- dialog is fine here); later requests only get a console line.
function transcribe.check_daemon(dir)
  if spool.is_alive(dir, spool.DAEMON_HEARTBEAT) then
    reaper.DeleteExtState(spool.EXT_SECTION, DAEMON_HINT_KEY, false)
    return
  end
  if reaper.GetExtState(spool.EXT_SECTION, DAEMON_HINT_KEY) ~= '' then
    console('reascribe: the daemon is not running; start it with "reascribe daemon".')
    return
  end
  reaper.SetExtState(spool.EXT_SECTION, DAEMON_HINT_KEY, '1', false)
  reaper.ShowMessageBox(
    'The reascribe daemon is not running, so your request waits in the queue.\n\n'
      .. 'Start it in a terminal with:\n\n    reascribe daemon\n\n'
      .. 'The piano take appears on the item as soon as the daemon has transcribed it.',
    TITLE, MB_OK)
end

-- Start the background bridge unless it is running (its toggle state is on, or another REAPER
-- on this spool keeps its heartbeat fresh). Relaunching a running bridge would stop it.
function transcribe.ensure_bridge(dir)
  local cmd = actions.command_id(SCRIPT_DIR, actions.BRIDGE)
  if cmd == 0 then
    console('reascribe: cannot find ' .. SCRIPT_DIR .. actions.BRIDGE .. '; reinstall the reascribe scripts.')
  elseif not actions.is_on(cmd) and not spool.is_alive(dir, spool.BRIDGE_HEARTBEAT) then
    reaper.Main_OnCommand(cmd, 0)
  end
end

function transcribe.run()
  local proj, file = reaper.EnumProjects(-1)
  local settings, dir = spool.configure(SCRIPT_DIR, console)
  local items, skipped = context.selected_items(proj)
  if #items == 0 then
    local text = 'Select one or more audio items, then run "reascribe: Transcribe piano" again.'
    if #skipped > 0 then text = text .. '\n\nThese selected items cannot be transcribed:\n' .. table.concat(skipped, '\n') end
    reaper.ShowMessageBox(text, TITLE, MB_OK)
    return
  end
  if #items > context.MAX_ITEMS then
    reaper.ShowMessageBox(string.format('%d items are selected; reascribe transcribes at most %d at once.',
      #items, context.MAX_ITEMS), TITLE, MB_OK)
    return
  end
  local request = transcribe.request(proj, file, items, settings)
  local ok, err = spool.ensure(dir)
  if ok then ok, err = spool.write_atomic(spool.join(dir, 'inbox', request.id .. '.json'), json.encode(request)) end
  if not ok then
    reaper.ShowMessageBox('reascribe cannot write its request into ' .. dir .. ':\n' .. tostring(err), TITLE, MB_OK)
    return
  end
  apply.remember_request(proj, request)
  console(string.format('reascribe: queued %s transcription of %d item%s (%s).', KIND, #items,
    #items == 1 and '' or 's', request.id))
  for _, why in ipairs(skipped) do console('reascribe: skipped: ' .. why) end
  transcribe.check_daemon(dir)
  transcribe.ensure_bridge(dir)
end

if reaper.set_action_options then reaper.set_action_options(TERMINATE_ON_RELAUNCH | RELAUNCH) end
transcribe.run()
reaper.defer(function() end) -- no undo point: the project itself is not edited
