-- @noindex
-- reascribe/chords.lua: how a chords result is applied. The chord take is written like any
-- transcription (reascribe/apply.lua); then, in the same undo block, the chord symbols go where
-- the result's "markers" says (chord_markers in reascribe_settings.lua, sent with the request):
--   'take' (default): take markers on the new take, so they move, copy and undo with the item;
--   'regions': project regions, one per chord (a region identical to one already there is not added
--     again, so transcribing the same item twice does not stack them);
--   'none': only the take.
-- The take's name gets the key ("Guitar chords (Eb:maj)").

local chords = {}

chords.MODES = { take = true, regions = true, none = true }
chords.DEFAULT_MODE = 'take'
local SAME_S = 1e-3 -- regions this close in start and end, with the same name, are the same region

local function finite(x)
  return type(x) == 'number' and x == x and x ~= math.huge and x ~= -math.huge
end

-- Chord rows {start_s, end_s, label, symbol} of a result item, in project seconds, cut to the item
-- (timing: position_s, length_s, start_offset_s, playrate of the audio take). No-chord rows are kept
-- (a lead sheet writes N.C.). Returns {start_s, end_s, name} in time order.
function chords.map(result_item, timing)
  local t0, t1 = timing.position_s, timing.position_s + timing.length_s
  local out = {}
  for _, c in ipairs(type(result_item.chords) == 'table' and result_item.chords or {}) do
    if type(c) == 'table' and finite(c[1]) and finite(c[2]) and type(c[3]) == 'string' then
      local s = math.max(t0, t0 + (c[1] - timing.start_offset_s) / timing.playrate)
      local e = math.min(t1, t0 + (c[2] - timing.start_offset_s) / timing.playrate)
      local name = type(c[4]) == 'string' and c[4] ~= '' and c[4] or c[3]
      if e > s then out[#out + 1] = { s, e, name } end
    end
  end
  table.sort(out, function(a, b) return a[1] < b[1] end)
  return out
end

-- Where the chord symbols go: the result's "markers" (the request's option, from chord_markers in
-- reascribe_settings.lua), the default when it names none.
function chords.mode(result_item)
  local mode = result_item.markers
  return chords.MODES[mode] and mode or chords.DEFAULT_MODE
end

function chords.add_take_markers(take, list)
  local position_s = reaper.GetMediaItemInfo_Value(reaper.GetMediaItemTake_Item(take), 'D_POSITION')
  local offset_s = reaper.GetMediaItemTakeInfo_Value(take, 'D_STARTOFFS')
  local playrate = reaper.GetMediaItemTakeInfo_Value(take, 'D_PLAYRATE')
  for _, c in ipairs(list) do
    reaper.SetTakeMarker(take, -1, c[3], offset_s + (c[1] - position_s) * playrate)
  end
  return #list
end

local function region_exists(proj, start_s, end_s, name)
  local i = 0
  while true do
    local retval, isrgn, pos, rgnend, rname = reaper.EnumProjectMarkers3(proj, i)
    if retval == 0 then return false end
    if isrgn and rname == name and math.abs(pos - start_s) < SAME_S and math.abs(rgnend - end_s) < SAME_S then
      return true
    end
    i = i + 1
  end
end

-- Adds a region per chord unless the same one is there; returns how many were added.
function chords.add_regions(proj, list)
  local added = 0
  for _, c in ipairs(list) do
    if not region_exists(proj, c[1], c[2], c[3]) and reaper.AddProjectMarker2(proj, true, c[1], c[2], c[3], -1, 0) >= 0 then
      added = added + 1
    end
  end
  return added
end

-- The apply handler of chords: base is the handler of a plain transcription (plan, write, undo, summary).
function chords.handler(base)
  local handler = { undo = base.undo, summary = base.summary }
  function handler.plan(take, proj, result_item, expected_path, id, kind)
    local plan, why = base.plan(take, proj, result_item, expected_path, id, kind)
    if type(plan) ~= 'table' then return plan, why end
    plan.chords = chords.map(result_item, {
      position_s = reaper.GetMediaItemInfo_Value(plan.item, 'D_POSITION'),
      length_s = reaper.GetMediaItemInfo_Value(plan.item, 'D_LENGTH'),
      start_offset_s = reaper.GetMediaItemTakeInfo_Value(take, 'D_STARTOFFS'),
      playrate = reaper.GetMediaItemTakeInfo_Value(take, 'D_PLAYRATE'),
    })
    plan.key = type(result_item.key) == 'string' and result_item.key or nil
    plan.mode = chords.mode(result_item)
    return plan
  end
  function handler.write(plan, id, kind)
    local stats = base.write(plan, id, kind)
    local take = reaper.GetActiveTake(plan.item) -- the take just written (write makes it active)
    if plan.key then
      reaper.GetSetMediaItemTakeInfo_String(take, 'P_NAME', plan.name .. ' ' .. kind .. ' (' .. plan.key .. ')', true)
    end
    if plan.mode == 'take' then
      chords.add_take_markers(take, plan.chords)
    elseif plan.mode == 'regions' then
      chords.add_regions(plan.proj, plan.chords)
    end
    return stats
  end
  return handler
end

return chords
