-- @noindex
-- reascribe/transcribe.lua: the "reascribe: Transcribe <kind>" actions (and "Separate", "Transcribe from
-- mix"). Each sends the selected audio items to the daemon as one request (docs/protocol.md), then makes
-- sure the bridge runs to apply the result; it never waits for the daemon and never edits the project.

local actions = require('reascribe.actions')
local apply = require('reascribe.apply')
local context = require('reascribe.context')
local json = require('reascribe.json')
local spool = require('reascribe.spool')
local tempo = require('reascribe.tempo')

local TITLE = 'reascribe'
local TTL_S = 86400 -- a request older than a day fails as expired
local DAEMON_HINT_KEY = 'daemon_hint_shown' -- ExtState: the no-daemon dialog was shown for this outage
local MB_OK = 0
local TERMINATE_ON_RELAUNCH, RELAUNCH = 1, 2 -- set_action_options: a quick second run restarts the action

local transcribe = {}

-- The words an action's messages use: its name, its job and what the user will see.
function transcribe.words(kind)
  return {
    action = 'Transcribe ' .. kind,
    job = kind .. ' transcription',
    outcome = 'The ' .. kind .. ' take appears on the item as soon as the daemon has transcribed it.',
  }
end

local function console(line)
  reaper.ShowConsoleMsg(line .. '\n')
end

function transcribe.request(proj, file, kind, items, options)
  return {
    protocol = spool.PROTOCOL,
    id = spool.new_id(),
    kind = kind,
    created_at = os.time(),
    ttl_s = TTL_S,
    client = 'REAPER ' .. reaper.GetAppVersion(),
    project = context.project(proj, file),
    tempo_map = tempo.map(proj),
    time_selection = context.time_selection(proj),
    options = options,
    items = items,
  }
end

-- Tell the user once per outage how to start the daemon (this action is user-triggered, so a
-- dialog is fine here); later requests only get a console line.
function transcribe.check_daemon(dir, words)
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
      .. words.outcome,
    TITLE, MB_OK)
end

-- Start the background bridge unless it is running (its toggle state is on, or another REAPER
-- on this spool keeps its heartbeat fresh). Relaunching a running bridge would stop it.
function transcribe.ensure_bridge(script_dir, dir)
  local cmd = actions.command_id(script_dir, actions.BRIDGE)
  if cmd == 0 then
    console('reascribe: cannot find ' .. script_dir .. actions.BRIDGE .. '; reinstall the reascribe scripts.')
  elseif not actions.is_on(cmd) and not spool.is_alive(dir, spool.BRIDGE_HEARTBEAT) then
    reaper.Main_OnCommand(cmd, 0)
  end
end

-- Write the request into the inbox and record it in the project; false (after telling the user) when
-- the spool cannot be written.
function transcribe.send(proj, dir, request)
  local ok, err = spool.ensure(dir)
  if ok then ok, err = spool.write_atomic(spool.join(dir, 'inbox', request.id .. '.json'), json.encode(request)) end
  if not ok then
    reaper.ShowMessageBox('reascribe cannot write its request into ' .. dir .. ':\n' .. tostring(err), TITLE, MB_OK)
    return false
  end
  apply.remember_request(proj, request)
  return true
end

-- Queue a request of this kind for the selected items. options(settings): the request's options
-- from reascribe_settings.lua; words: see transcribe.words (the default).
function transcribe.run(script_dir, kind, options, words)
  words = words or transcribe.words(kind)
  local proj, file = reaper.EnumProjects(-1)
  local settings, dir = spool.configure(script_dir, console)
  local items, skipped = context.selected_items(proj)
  if #items == 0 then
    local text = 'Select one or more audio items, then run "reascribe: ' .. words.action .. '" again.'
    if #skipped > 0 then
      text = text .. '\n\nThese selected items cannot be used:\n' .. table.concat(skipped, '\n')
    end
    reaper.ShowMessageBox(text, TITLE, MB_OK)
    return
  end
  if #items > context.MAX_ITEMS then
    reaper.ShowMessageBox(string.format('%d items are selected; reascribe takes at most %d at once.',
      #items, context.MAX_ITEMS), TITLE, MB_OK)
    return
  end
  local request = transcribe.request(proj, file, kind, items, options(settings))
  if not transcribe.send(proj, dir, request) then return end
  console(string.format('reascribe: queued %s of %d item%s (%s).', words.job, #items,
    #items == 1 and '' or 's', request.id))
  for _, why in ipairs(skipped) do console('reascribe: skipped: ' .. why) end
  transcribe.check_daemon(dir, words)
  transcribe.ensure_bridge(script_dir, dir)
end

-- The whole action: run once, with no undo point (the project itself is not edited).
function transcribe.main(script_dir, kind, options, words)
  if reaper.set_action_options then reaper.set_action_options(TERMINATE_ON_RELAUNCH | RELAUNCH) end
  transcribe.run(script_dir, kind, options, words)
  reaper.defer(function() end)
end

return transcribe
