-- @noindex
-- reascribe/tracks.lua: results applied as new tracks right under the item's track (docs/protocol.md).
--
-- "separate": a folder track "<item> stems" holding one track per stem, each with one audio item of
-- its stem file at the item's position and length. The daemon rendered the section the item plays,
-- so each stem take starts at offset 0 and plays at the item's playrate and pitch: it sounds in time
-- with the item. "mix": one MIDI track "<item> <kind>" per transcribed part, its MIDI item spanning
-- the item. The item itself is never changed. Every new track carries P_EXT:reascribe_result =
-- "<result id> <item GUID>", so a result applied again finds its tracks and adds nothing.

local apply = require('reascribe.apply')
local context = require('reascribe.context')
local json = require('reascribe.json')

local tracks = {}

local RESULT_EXT = 'P_EXT:reascribe_result'
local START_TOLERANCE_S = 1e-6 -- the request's start offset went through JSON

local function plural(n, word)
  return n .. ' ' .. word .. (n == 1 and '' or 's')
end

local function mark_of(id, item)
  local _, guid = reaper.GetSetMediaItemInfo_String(item, 'GUID', '', false)
  return id .. ' ' .. guid
end

local function has_tracks(proj, mark)
  for i = 0, reaper.CountTracks(proj) - 1 do
    local _, value = reaper.GetSetMediaTrackInfo_String(reaper.GetTrack(proj, i), RESULT_EXT, '', false)
    if value == mark then return true end
  end
  return false
end

-- A new track at index (0-based) of proj. InsertTrackInProject (REAPER 7.18 and later) takes a
-- project; older REAPERs can only insert into the current one.
local function insert_track(proj, index)
  if reaper.InsertTrackInProject then
    reaper.InsertTrackInProject(proj, index, 1) -- 1: default envelopes and FX (verify in REAPER)
  elseif proj == reaper.EnumProjects(-1) then
    reaper.InsertTrackAtIndex(index, true)
  else
    error('this REAPER adds tracks only to the current project; switch to its tab and run "reascribe: Apply results"', 0)
  end
  return reaper.GetTrack(proj, index)
end

-- Tracks named names right after track, the first one a folder holding the others when folder is
-- true, filled by fill(new tracks). A track that closes folders (I_FOLDERDEPTH < 0) hands that over
-- to the last new track, so the new tracks stay in the folders the item's track is in. When fill (or
-- anything here) fails, the new tracks are deleted and the depth given back before the error goes on.
local function add_tracks(proj, track, names, folder, mark, fill)
  local index = math.floor(reaper.GetMediaTrackInfo_Value(track, 'IP_TRACKNUMBER')) -- 1-based: the next index
  local depth = math.floor(reaper.GetMediaTrackInfo_Value(track, 'I_FOLDERDEPTH'))
  local closes = math.min(0, depth)
  local new = {}
  local ok, result = pcall(function()
    for n, name in ipairs(names) do
      local tr = insert_track(proj, index + n - 1)
      if not tr then error('REAPER did not add a track', 0) end
      new[n] = tr
      reaper.GetSetMediaTrackInfo_String(tr, 'P_NAME', name, true)
      reaper.GetSetMediaTrackInfo_String(tr, RESULT_EXT, mark, true)
    end
    if closes < 0 then reaper.SetMediaTrackInfo_Value(track, 'I_FOLDERDEPTH', 0) end
    if folder then reaper.SetMediaTrackInfo_Value(new[1], 'I_FOLDERDEPTH', 1) end
    reaper.SetMediaTrackInfo_Value(new[#new], 'I_FOLDERDEPTH', (folder and -1 or 0) + closes)
    return fill(new)
  end)
  if ok then return result end
  for _, tr in ipairs(new) do reaper.DeleteTrack(tr) end
  reaper.SetMediaTrackInfo_Value(track, 'I_FOLDERDEPTH', depth)
  error(result, 0)
end

-- What separate and mix plans share: nil, sentence when the item no longer plays what the daemon heard.
local function check_item(take, item, label, expected_path)
  if reaper.GetTakeNumStretchMarkers(take) > 0 then
    return label .. ' now has stretch markers; remove them (Item > Stretch markers > Remove all) and run the action again'
  end
  local problem = context.playback_problem(item, take)
  if problem then return label .. ' now ' .. problem .. ', then run the action again' end
  if expected_path and context.take_source_path(take) ~= expected_path then
    return label .. ' now plays a different audio file than the one the daemon heard; run the action again'
  end
end

local function base_plan(take, proj, expected_path, id)
  local item = reaper.GetMediaItemTake_Item(take)
  local name = context.take_name(take)
  local plan = {
    item = item, proj = proj, name = name, label = '"' .. name .. '"', mark = mark_of(id, item),
    position_s = reaper.GetMediaItemInfo_Value(item, 'D_POSITION'),
    length_s = reaper.GetMediaItemInfo_Value(item, 'D_LENGTH'), dropped = 0, invalid = 0,
  }
  if has_tracks(proj, plan.mark) then return 'present' end
  local why = check_item(take, item, plan.label, expected_path)
  if why then return nil, why end
  return plan
end

-- "separate" -----------------------------------------------------------------------------------------

local function separate_plan(take, proj, result_item, expected_path, id)
  local plan, why = base_plan(take, proj, expected_path, id)
  if type(plan) ~= 'table' then return plan, why end
  local section = type(result_item.section) == 'table' and result_item.section.start_s
  local offset = reaper.GetMediaItemTakeInfo_Value(take, 'D_STARTOFFS')
  if type(section) == 'number' and math.abs(section - offset) > START_TOLERANCE_S then
    return nil, plan.label .. ' now starts elsewhere in its audio file than when it was separated; separate it again'
  end
  plan.stems = {}
  for _, stem in ipairs(json.is_array(result_item.stems) and result_item.stems or {}) do
    if type(stem) ~= 'table' or type(stem.name) ~= 'string' or type(stem.path) ~= 'string' then
      return nil, 'the result for ' .. plan.label .. ' names a stem without a name or file'
    end
    if not reaper.file_exists(stem.path) then
      return nil, 'the stem file ' .. stem.path .. ' of ' .. plan.label .. ' is missing; separate it again'
    end
    plan.stems[#plan.stems + 1] = stem
  end
  if #plan.stems == 0 then return nil, 'the result for ' .. plan.label .. ' has no stems' end
  plan.playrate = reaper.GetMediaItemTakeInfo_Value(take, 'D_PLAYRATE')
  plan.pitch = reaper.GetMediaItemTakeInfo_Value(take, 'D_PITCH')
  plan.preserve_pitch = reaper.GetMediaItemTakeInfo_Value(take, 'B_PPITCH')
  return plan
end

local function fill_stems(plan, new)
  for i, stem in ipairs(plan.stems) do
    local item = reaper.AddMediaItemToTrack(new[i + 1])
    if not item then error('REAPER did not add an item for the ' .. stem.name .. ' stem', 0) end
    reaper.SetMediaItemInfo_Value(item, 'D_POSITION', plan.position_s)
    reaper.SetMediaItemInfo_Value(item, 'D_LENGTH', plan.length_s)
    local take = reaper.AddTakeToMediaItem(item)
    local source = take and reaper.PCM_Source_CreateFromFile(stem.path)
    if not source then error('REAPER did not open the stem file ' .. stem.path, 0) end
    reaper.SetMediaItemTake_Source(take, source)
    reaper.GetSetMediaItemTakeInfo_String(take, 'P_NAME', plan.name .. ' ' .. stem.name, true)
    reaper.SetMediaItemTakeInfo_Value(take, 'D_STARTOFFS', 0)
    reaper.SetMediaItemTakeInfo_Value(take, 'D_PLAYRATE', plan.playrate)
    reaper.SetMediaItemTakeInfo_Value(take, 'D_PITCH', plan.pitch)
    reaper.SetMediaItemTakeInfo_Value(take, 'B_PPITCH', plan.preserve_pitch)
    reaper.SetActiveTake(take)
    reaper.UpdateItemInProject(item)
  end
  return {}
end

local function separate_write(plan)
  local names = { plan.name .. ' stems' }
  for i, stem in ipairs(plan.stems) do names[i + 1] = stem.name end
  return add_tracks(plan.proj, reaper.GetMediaItem_Track(plan.item), names, true, plan.mark,
    function(new) return fill_stems(plan, new) end)
end

local function separate_summary(applied, present, totals, failures)
  local parts = {}
  if applied > 0 then parts[#parts + 1] = 'added the stems of ' .. plural(applied, 'item') .. ' on new tracks' end
  if present > 0 then parts[#parts + 1] = plural(present, 'item') .. ' already had them' end
  if #failures > 0 then parts[#parts + 1] = plural(#failures, 'item') .. ' failed: ' .. table.concat(failures, '; ') end
  return table.concat(parts, '; ')
end

tracks.separate = { plan = separate_plan, write = separate_write, undo = 'reascribe: separate',
                    summary = separate_summary }

-- "mix" --------------------------------------------------------------------------------------------

local function mix_plan(take, proj, result_item, expected_path, id)
  local plan, why = base_plan(take, proj, expected_path, id)
  if type(plan) ~= 'table' then return plan, why end
  plan.parts = {}
  for _, part in ipairs(json.is_array(result_item.parts) and result_item.parts or {}) do
    local kind = type(part) == 'table' and type(part.kind) == 'string' and part.kind:match('^[%w_]+$')
    if not kind then return nil, 'the result for ' .. plan.label .. ' has a part without a kind' end
    local part_plan, part_why = apply.plan_item(take, proj, part, expected_path, id, kind)
    if type(part_plan) == 'table' then
      part_plan.kind = kind
      plan.parts[#plan.parts + 1] = part_plan
      plan.dropped, plan.invalid = plan.dropped + part_plan.dropped, plan.invalid + part_plan.invalid
    elseif not (part_why and part_why:match('^no ')) then -- a part with no notes gets no track
      return nil, part_why or ('the result for ' .. plan.label .. ' could not be read')
    end
  end
  if #plan.parts == 0 then return nil, 'no notes were found in the stems of ' .. plan.label end
  return plan
end

local function fill_parts(plan, new, names)
  local totals = { notes = 0, ccs = 0, doubled = 0, refused = 0 }
  for i, part in ipairs(plan.parts) do
    local item = reaper.CreateNewMIDIItemInProj(new[i], plan.position_s, plan.position_s + plan.length_s)
    local take = item and reaper.GetActiveTake(item)
    if not take then error('REAPER did not add a MIDI item for ' .. part.kind, 0) end
    reaper.GetSetMediaItemTakeInfo_String(take, 'P_NAME', names[i], true)
    for key, n in pairs(apply.insert_events(take, part)) do totals[key] = totals[key] + n end
    reaper.UpdateItemInProject(item)
  end
  return totals
end

local function mix_write(plan)
  local names = {}
  for i, part in ipairs(plan.parts) do names[i] = plan.name .. ' ' .. part.kind end
  return add_tracks(plan.proj, reaper.GetMediaItem_Track(plan.item), names, false, plan.mark,
    function(new) return fill_parts(plan, new, names) end)
end

local function mix_summary(applied, present, totals, failures)
  local parts = {}
  if applied > 0 then
    local counts = plural(totals.notes, 'note') .. (totals.ccs > 0 and ', ' .. plural(totals.ccs, 'pedal event') or '')
    local left_out = totals.dropped + totals.doubled + totals.invalid + totals.refused
    parts[#parts + 1] = string.format('added MIDI tracks under %s (%s%s)', plural(applied, 'item'), counts,
      left_out > 0 and '; ' .. plural(left_out, 'event') .. ' left out' or '')
  end
  if present > 0 then parts[#parts + 1] = plural(present, 'item') .. ' already had them' end
  if #failures > 0 then parts[#parts + 1] = plural(#failures, 'item') .. ' failed: ' .. table.concat(failures, '; ') end
  return table.concat(parts, '; ')
end

tracks.mix = { plan = mix_plan, write = mix_write, undo = 'reascribe: transcribe from mix', summary = mix_summary }

return tracks
