-- @noindex
-- reascribe/fill.lua: "reascribe: Generate fill". The action sends the notes of the selected track
-- around the time selection (docs/protocol.md, kind "generate"); the bridge applies the result as a new
-- MIDI item filling the time selection, one take per variation, in one undo block.

local apply = require('reascribe.apply')
local context = require('reascribe.context')
local json = require('reascribe.json')
local spool = require('reascribe.spool')
local tempo = require('reascribe.tempo')
local transcribe = require('reascribe.transcribe')

local fill = {}

fill.CONTEXT_BARS = 35 -- bars read each side: the generator reads 34 (it looks for where the song repeats
                       -- the bars around the gap), one more covers a selection off the bar line
local TITLE = 'reascribe'
local MB_OK = 0
local UNDO_STATE_ALL = -1
local RESULT_EXT = 'P_EXT:reascribe_result' -- marks the new item's takes, as apply.lua marks its takes
local WORDS = {
  action = 'Generate fill',
  job = 'fill',
  outcome = 'The fill appears as a new item in the time selection as soon as the daemon has written it.',
}

local function console(line)
  reaper.ShowConsoleMsg(line .. '\n')
end

local function bar_qn(proj, time_s)
  local num, denom = reaper.TimeMap_GetTimeSigAtTime(proj, time_s)
  return num * 4 / denom
end

-- Project seconds from CONTEXT_BARS bars before start_s to as many after end_s.
function fill.context_range(proj, start_s, end_s)
  local from_qn = reaper.TimeMap2_timeToQN(proj, start_s) - fill.CONTEXT_BARS * bar_qn(proj, start_s)
  local to_qn = reaper.TimeMap2_timeToQN(proj, end_s) + fill.CONTEXT_BARS * bar_qn(proj, end_s)
  return reaper.TimeMap2_QNToTime(proj, math.max(0, from_qn)), reaper.TimeMap2_QNToTime(proj, to_qn)
end

-- {start_s, end_s, pitch, velocity, channel} of the notes that start in [from_s, to_s) and play: the
-- active takes of the track's unmuted MIDI items, unmuted notes inside the item's bounds (a looped
-- item contributes the notes of its source as placed, not their repeats).
function fill.track_notes(proj, track, from_s, to_s)
  local notes = json.array()
  for i = 0, reaper.CountMediaItems(proj) - 1 do
    local item = reaper.GetMediaItem(proj, i)
    local take = reaper.GetActiveTake(item)
    local position_s = reaper.GetMediaItemInfo_Value(item, 'D_POSITION')
    local end_s = position_s + reaper.GetMediaItemInfo_Value(item, 'D_LENGTH')
    if reaper.GetMediaItem_Track(item) == track and take and reaper.TakeIsMIDI(take)
        and reaper.GetMediaItemInfo_Value(item, 'B_MUTE') == 0 and position_s < to_s and end_s > from_s then
      local _, count = reaper.MIDI_CountEvts(take)
      for n = 0, count - 1 do
        local ok, _, muted, start_ppq, end_ppq, chan, pitch, vel = reaper.MIDI_GetNote(take, n)
        local start = ok and reaper.MIDI_GetProjTimeFromPPQPos(take, start_ppq)
        if ok and not muted and start >= position_s and start < end_s and start >= from_s and start < to_s then
          local stop = math.min(math.max(start, reaper.MIDI_GetProjTimeFromPPQPos(take, end_ppq)), end_s)
          notes[#notes + 1] = { start, stop, pitch, math.max(1, vel), chan + 1 }
        end
      end
    end
  end
  return notes
end

local function track_guid(track)
  local _, guid = reaper.GetSetMediaTrackInfo_String(track, 'GUID', '', false)
  return guid
end

function fill.request(proj, file, track, start_s, end_s, options)
  local from_s, to_s = fill.context_range(proj, start_s, end_s)
  local _, name = reaper.GetSetMediaTrackInfo_String(track, 'P_NAME', '', false)
  return {
    protocol = spool.PROTOCOL,
    id = spool.new_id(),
    kind = 'generate',
    created_at = os.time(),
    ttl_s = 3600, -- a fill nobody waited an hour for is not wanted any more
    client = 'REAPER ' .. reaper.GetAppVersion(),
    project = context.project(proj, file),
    tempo_map = tempo.map(proj),
    time_selection = { start_s = start_s, end_s = end_s },
    options = options,
    items = json.array(),
    context = { track_guid = track_guid(track), track = name, notes = fill.track_notes(proj, track, from_s, to_s) },
  }
end

-- The request's options from reascribe_settings.lua; settings left out keep the daemon's defaults.
function fill.options(settings)
  return {
    variations = settings.fill_variations, temperature = settings.fill_temperature,
    density = settings.fill_density, part = settings.fill_part,
  }
end

-- The action: queue a fill for the selected track's time selection; never edits the project.
function fill.run(script_dir)
  local proj, file = reaper.EnumProjects(-1)
  local settings, dir = spool.configure(script_dir, console)
  local start_s, end_s = reaper.GetSet_LoopTimeRange2(proj, false, false, 0, 0, false)
  local track = reaper.GetSelectedTrack(proj, 0)
  if not track or end_s <= start_s then
    reaper.ShowMessageBox('Select a track with MIDI and make a time selection over the bars to fill, then run '
      .. '"reascribe: Generate fill" again.', TITLE, MB_OK)
    return
  end
  local request = fill.request(proj, file, track, start_s, end_s, fill.options(settings))
  if not transcribe.send(proj, dir, request) then return end
  console(string.format('reascribe: queued a fill of %.2f-%.2f s from %d notes around it (%s).', start_s, end_s,
    #request.context.notes, request.id))
  transcribe.check_daemon(dir, WORDS)
  transcribe.ensure_bridge(script_dir, dir)
end

local function find_track(projects, guid, first)
  local order = {}
  if first then order[1] = first end
  for _, p in ipairs(projects) do
    if p.proj ~= first then order[#order + 1] = p.proj end
  end
  for _, proj in ipairs(order) do
    for i = 0, reaper.CountTracks(proj) - 1 do
      local track = reaper.GetTrack(proj, i)
      if track_guid(track) == guid then return track, proj end
    end
  end
end

local function valid_fill(doc)
  local f = doc.fill
  if type(f) ~= 'table' or type(f.track_guid) ~= 'string' or type(f.start_s) ~= 'number'
      or type(f.end_s) ~= 'number' or not (f.end_s > f.start_s) or not json.is_array(f.variations)
      or #f.variations == 0 then
    return nil
  end
  return f
end

-- The new item: one take per variation, named "fill 1", "fill 2", ..., the first one active.
local function write_takes(item, proj, f, id)
  local take = reaper.GetActiveTake(item)
  if not take then error('REAPER did not add a MIDI item', 0) end
  local first_guid = select(2, reaper.GetSetMediaItemTakeInfo_String(take, 'GUID', '', false))
  local channel = (math.tointeger(f.channel) or 1) - 1
  local notes = 0
  for v, rows in ipairs(f.variations) do
    if v > 1 then take = apply.add_midi_take(item, proj) end
    reaper.GetSetMediaItemTakeInfo_String(take, 'P_NAME', 'fill ' .. v, true)
    reaper.GetSetMediaItemTakeInfo_String(take, RESULT_EXT, id, true)
    local plan = { notes = {}, ccs = {}, channel = math.max(0, math.min(15, channel)), end_s = f.end_s }
    for _, n in ipairs(json.is_array(rows) and rows or {}) do
      if type(n) == 'table' and type(n[1]) == 'number' and type(n[2]) == 'number' and math.tointeger(n[3])
          and math.tointeger(n[4]) and n[1] >= f.start_s and n[1] < f.end_s then
        plan.notes[#plan.notes + 1] = { n[1], math.min(n[2], f.end_s), n[3], n[4] }
      end
    end
    if #plan.notes > 0 then notes = notes + apply.insert_events(take, plan).notes end
  end
  reaper.SetActiveTake(reaper.GetMediaItemTakeByGUID(proj, first_guid))
  reaper.UpdateItemInProject(item)
  return notes
end

-- The filled item, or an error; an item that cannot be finished is deleted again.
local function write_item(track, proj, f, id)
  local item = reaper.CreateNewMIDIItemInProj(track, f.start_s, f.end_s)
  if not item then error('REAPER did not add a MIDI item', 0) end
  local ok, notes = pcall(write_takes, item, proj, f, id)
  if ok then return notes end
  reaper.DeleteTrackMediaItem(track, item)
  error(notes, 0)
end

-- Apply a generate result (called by apply.result): {state = 'done', line, proj}, {state = 'waiting'}
-- (its project is not open) or {state = 'failed', reason}.
function fill.apply(doc, id, projects, request_proj)
  local f = valid_fill(doc)
  if not f then return { state = 'failed', reason = 'The fill in the result is malformed.' } end
  local track, proj = find_track(projects, f.track_guid, request_proj)
  if not track then
    if not request_proj then return { state = 'waiting' } end
    return { state = 'failed', reason = 'The track of the fill was deleted.' }
  end
  reaper.PreventUIRefresh(1)
  reaper.Undo_BeginBlock2(proj)
  local ok, notes = pcall(write_item, track, proj, f, id)
  reaper.Undo_EndBlock2(proj, 'reascribe: generate fill', UNDO_STATE_ALL)
  reaper.PreventUIRefresh(-1)
  reaper.UpdateArrange()
  if not ok then return { state = 'failed', reason = 'The fill could not be added: ' .. tostring(notes) .. '.' } end
  return {
    state = 'done', proj = proj,
    line = string.format('reascribe: %s: added a %s fill with %d take%s (%d notes).', id, tostring(doc.fill.part),
      #f.variations, #f.variations == 1 and '' or 's', notes),
  }
end

function fill.main(script_dir)
  fill.run(script_dir)
  reaper.defer(function() end)
end

return fill
