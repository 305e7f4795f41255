-- @noindex
-- reascribe/apply.lua: apply one result from outbox/ as new MIDI takes (docs/protocol.md); separate and
-- mix results become new tracks instead (reascribe/tracks.lua), with the same bookkeeping.
--
-- A result is applied once: its id goes to applied.log and the project's ProjExtState, and each new
-- take carries P_EXT:reascribe_result = id, so a result seen again (after a crash between the edit
-- and the log, or copied back) adds nothing. One undo block per result and project. A result whose
-- project is not open stays in outbox/ untouched.
--
-- The new take: AddTakeToMediaItem, a MIDI source from PCM_Source_CreateFromType, given data and
-- the item's length through the item state chunk, then MIDI_InsertNote/MIDI_InsertCC on the result's
-- channel at PPQ positions from MIDI_GetPPQPosFromProjTime, with the item's position, start offset and
-- playrate as they are when the result is applied. A take that cannot be finished is removed again.

local context = require('reascribe.context')
local json = require('reascribe.json')
local spool = require('reascribe.spool')

local apply = {}

local RESULT_EXT = 'P_EXT:reascribe_result'
local UNDO_STATE_ALL = -1
local CC_STATUS = 0xB0 -- control change, channel voice message type
local MAX_CHANNEL = 16
local MIDI_TICKS_PER_QN = 960 -- resolution of the MIDI sources the bridge creates (REAPER's default)
local MIN_VELOCITY, MAX_MIDI = 1, 127
local PEDAL_DOWN = 64 -- a controller value from here up is "on" (sustain and soft pedal)
local REQUEST_FOLDERS = { 'archive', 'processing', 'inbox' } -- where the daemon keeps a request

local function plural(n, word)
  return n .. ' ' .. word .. (n == 1 and '' or 's')
end

local function list(value)
  return json.is_array(value) and value or {}
end

local function proj_ext(proj, key)
  local _, value = reaper.GetProjExtState(proj, spool.EXT_SECTION, key)
  return value
end

-- The take with this GUID: in the project first (the one the request came from), then in the others.
local function find_take(projects, guid, first)
  if first then
    local take = reaper.GetMediaItemTakeByGUID(first, guid)
    if take then return take, first end
  end
  for _, p in ipairs(projects) do
    if p.proj ~= first then
      local take = reaper.GetMediaItemTakeByGUID(p.proj, guid)
      if take then return take, p.proj end
    end
  end
end

local function take_guid(take)
  local _, guid = reaper.GetSetMediaItemTakeInfo_String(take, 'GUID', '', false)
  return guid
end

-- Request bookkeeping ------------------------------------------------------------------------------

-- Called when a request is queued: the project remembers it (and each take's source file), so a
-- result can tell "the item was deleted" from "the project is not open".
function apply.remember_request(proj, request)
  local sources = {}
  for _, item in ipairs(request.items) do sources[item.take_guid] = item.source.path end
  reaper.SetProjExtState(proj, spool.EXT_SECTION, 'request:' .. request.id, json.encode({ sources = sources }))
end

-- What is known about the request of a result: the open project it came from (if it is open) and
-- the source file of each take, from the project's record or the daemon's copy of the request.
local function request_info(dir, id, projects)
  for _, p in ipairs(projects) do
    local doc = json.decode(proj_ext(p.proj, 'request:' .. id))
    if type(doc) == 'table' then
      return { proj = p.proj, sources = type(doc.sources) == 'table' and doc.sources or {} }
    end
  end
  for _, folder in ipairs(REQUEST_FOLDERS) do
    local doc = spool.read_json(spool.join(dir, folder, id .. '.json'))
    if type(doc) == 'table' then
      local info = { sources = {} }
      local file = type(doc.project) == 'table' and doc.project.file
      for _, p in ipairs(projects) do
        if type(file) == 'string' and file ~= '' and p.file == file then info.proj = p.proj end
      end
      for _, item in ipairs(list(doc.items)) do
        if type(item) == 'table' and type(item.take_guid) == 'string' and type(item.source) == 'table'
            and type(item.source.path) == 'string' then
          info.sources[item.take_guid] = item.source.path
        end
      end
      return info
    end
  end
  return { sources = {} }
end

local function already_applied(dir, id, projects)
  if spool.is_applied(dir, id) then return true end
  for _, p in ipairs(projects) do
    if proj_ext(p.proj, 'applied:' .. id) ~= '' then return true end
  end
  return false
end

-- Events -------------------------------------------------------------------------------------------

local function finite(x)
  return type(x) == 'number' and x == x and x ~= math.huge and x ~= -math.huge
end

local function midi_value(x)
  local v = math.tointeger(x)
  return v and v >= 0 and v <= MAX_MIDI and v or nil
end

-- Notes {start_s, end_s, pitch, velocity} and CCs {time_s, controller, value[, at_end]} in project
-- seconds. timing: the item's values now (position_s, length_s, start_offset_s, playrate, semitones).
-- Notes are cut to the item: one sounding when the item starts starts there, with its velocity.
-- For each controller (values from PEDAL_DOWN up are "down"): a value held down into the item is set
-- again at its start, unless an event of that controller is exactly there; a value still down at the
-- item end is released on the item's last tick (at_end = true; the value is the controller's next
-- value after the item if that is up, else 0), so no pedal stays down after the take. CCs are in time
-- order, events at the same time in the order of the result. Returns notes, ccs, how many events lie
-- outside the item (or outside the MIDI range after transposing) and how many are malformed.
function apply.map_events(result_item, timing)
  local t0 = timing.position_s
  local t1 = t0 + timing.length_s
  local function to_project(source_s)
    return t0 + (source_s - timing.start_offset_s) / timing.playrate
  end
  local notes, dropped, invalid = {}, 0, 0
  for _, n in ipairs(list(result_item.notes)) do
    if type(n) == 'table' and finite(n[1]) and finite(n[2]) and n[2] > n[1] and midi_value(n[3]) and finite(n[4]) then
      local start_s, end_s = math.max(to_project(n[1]), t0), math.min(to_project(n[2]), t1)
      local pitch = midi_value(n[3]) + timing.semitones
      if start_s < end_s and pitch >= 0 and pitch <= MAX_MIDI then
        local velocity = math.max(MIN_VELOCITY, math.min(MAX_MIDI, math.floor(n[4] + 0.5)))
        notes[#notes + 1] = { start_s, end_s, pitch, velocity }
      else
        dropped = dropped + 1
      end
    else
      invalid = invalid + 1
    end
  end

  local inside, held, after, at_start = {}, {}, {}, {} -- held/after/at_start: per controller
  for i, c in ipairs(list(result_item.cc)) do
    local controller, value = type(c) == 'table' and midi_value(c[2]), type(c) == 'table' and midi_value(c[3])
    if controller and value and finite(c[1]) then
      local t = to_project(c[1])
      if t < t0 then
        if not held[controller] or held[controller].t <= t then held[controller] = { t = t, value = value } end
      elseif t < t1 then
        inside[#inside + 1] = { t, controller, value, order = i }
        if t == t0 then at_start[controller] = true end
      else
        dropped = dropped + 1
        if not after[controller] or t < after[controller].t then after[controller] = { t = t, value = value } end
      end
    else
      invalid = invalid + 1
    end
  end
  for controller = 0, MAX_MIDI do
    local last = held[controller]
    if last and last.value >= PEDAL_DOWN and not at_start[controller] then
      inside[#inside + 1] = { t0, controller, last.value, order = controller - MAX_MIDI - 1 } -- before the rest
    end
  end
  table.sort(inside, function(a, b) return a[1] < b[1] or (a[1] == b[1] and a.order < b.order) end)

  local ccs, state = {}, {}
  for _, c in ipairs(inside) do
    ccs[#ccs + 1] = { c[1], c[2], c[3] }
    state[c[2]] = c[3]
  end
  for controller = 0, MAX_MIDI do
    if state[controller] and state[controller] >= PEDAL_DOWN then
      local next_value = after[controller] and after[controller].value
      ccs[#ccs + 1] = { t1, controller, next_value and next_value < PEDAL_DOWN and next_value or 0, true }
    end
  end
  return notes, ccs, dropped, invalid
end

-- Notes {start_tick, end_tick, pitch, velocity} on one channel, where a note-on of a pitch that
-- sounds would cut it (or its note-off the new note): each note ends no later than the next start of
-- its pitch. Of notes of a pitch starting on the same tick only the last one in the list stays.
-- Returns the notes (by pitch, then start) and how many were left out.
function apply.without_overlaps(notes)
  local order = {}
  for i = 1, #notes do order[i] = i end
  table.sort(order, function(a, b)
    local na, nb = notes[a], notes[b]
    if na[3] ~= nb[3] then return na[3] < nb[3] end
    if na[1] ~= nb[1] then return na[1] < nb[1] end
    return a < b
  end)
  local out, doubled = {}, 0
  for k, i in ipairs(order) do
    local n, following = notes[i], notes[order[k + 1]]
    local end_tick = n[2]
    if following and following[3] == n[3] then end_tick = math.min(end_tick, following[1]) end
    if end_tick > n[1] then
      out[#out + 1] = { n[1], end_tick, n[3], n[4] }
    else
      doubled = doubled + 1
    end
  end
  return out, doubled
end

-- The MIDI channel (0-15) of a result item's events: its "channel" (1-16), 1 when it names none.
local function result_channel(result_item)
  if result_item.channel == nil then return 0 end
  local channel = type(result_item.channel) == 'number' and math.tointeger(result_item.channel)
  return channel and channel >= 1 and channel <= MAX_CHANNEL and channel - 1 or nil
end

-- The audio take's timing now: the pitch follows D_PITCH, plus the playrate when pitch is not preserved.
local function item_timing(item, take)
  local playrate = reaper.GetMediaItemTakeInfo_Value(take, 'D_PLAYRATE')
  local semitones = reaper.GetMediaItemTakeInfo_Value(take, 'D_PITCH')
  if reaper.GetMediaItemTakeInfo_Value(take, 'B_PPITCH') == 0 then
    semitones = semitones + 12 * math.log(playrate, 2)
  end
  return {
    position_s = reaper.GetMediaItemInfo_Value(item, 'D_POSITION'),
    length_s = reaper.GetMediaItemInfo_Value(item, 'D_LENGTH'),
    start_offset_s = reaper.GetMediaItemTakeInfo_Value(take, 'D_STARTOFFS'),
    playrate = playrate,
    semitones = math.floor(semitones + 0.5),
  }
end

-- Planning and writing -----------------------------------------------------------------------------

-- What to write for one result item whose take was found: a plan, 'present' when the item already
-- has this result's take, or nil, sentence. (reascribe/tracks.lua plans each part of a mix with it.)
function apply.plan_item(take, proj, result_item, expected_path, id, kind)
  local item = reaper.GetMediaItemTake_Item(take)
  local name = context.take_name(take)
  local label = '"' .. name .. '"'
  for t = 0, reaper.CountTakes(item) - 1 do
    local _, mark = reaper.GetSetMediaItemTakeInfo_String(reaper.GetTake(item, t), RESULT_EXT, '', false)
    if mark == id then return 'present' end
  end
  if reaper.GetTakeNumStretchMarkers(take) > 0 then
    return nil, label .. ' now has stretch markers; remove them (Item > Stretch markers > Remove all) and transcribe it again'
  end
  local problem = context.playback_problem(item, take)
  if problem then return nil, label .. ' now ' .. problem .. ', then transcribe it again' end
  local path = context.take_source_path(take)
  if expected_path and path ~= expected_path then
    return nil, label .. ' now plays a different audio file than the one transcribed; transcribe it again'
  end
  local channel = result_channel(result_item)
  if not channel then
    return nil, 'the result for ' .. label .. ' names MIDI channel ' .. tostring(result_item.channel) .. ', not 1-16'
  end
  local timing = item_timing(item, take)
  if not (timing.playrate > 0) then return nil, label .. ' has no valid playrate' end
  if result_item.pitched == false then timing.semitones = 0 end -- drum notes name drums: never transpose them
  local notes, ccs, dropped, invalid = apply.map_events(result_item, timing)
  if #notes == 0 then return nil, 'no ' .. kind .. ' notes were found in the part of ' .. label .. ' that plays' end
  return {
    item = item, proj = proj, name = name, label = label, notes = notes, ccs = ccs, channel = channel,
    end_s = timing.position_s + timing.length_s, dropped = dropped, invalid = invalid,
  }
end

local function to_ppq(take, time_s)
  return math.floor(reaper.MIDI_GetPPQPosFromProjTime(take, time_s) + 0.5)
end

-- Item state chunks --------------------------------------------------------------------------------

local function chunk_lines(item)
  local ok, chunk = reaper.GetItemStateChunk(item, '', false)
  if not ok then return nil, 'REAPER did not give the item state' end
  local lines = {}
  for line in (chunk:sub(-1) == '\n' and chunk or chunk .. '\n'):gmatch('(.-)\r?\n') do lines[#lines + 1] = line end
  return lines
end

local function set_chunk_lines(item, lines)
  return reaper.SetItemStateChunk(item, table.concat(lines, '\n') .. '\n', false)
end

-- The take with this GUID in the lines of an item state chunk: {first, last, source_first,
-- source_last}. A take runs from its TAKE line (the first take has none: first is nil) to the line
-- before the next TAKE line or the item's end; source_* is its top-level <SOURCE block.
local function chunk_take(lines, guid)
  local takes, depth = { {} }, 0
  for i, line in ipairs(lines) do
    local text = line:match('^%s*(.-)%s*$')
    local take = takes[#takes]
    if depth == 1 then
      if text == 'TAKE' or text:match('^TAKE%s') then
        take.last = i - 1
        take = { first = i }
        takes[#takes + 1] = take
      end
      local line_guid = text:match('^GUID%s+(%S+)')
      if line_guid then take.guid = line_guid:upper() end
      if text:match('^<SOURCE') and not take.source_first then take.source_first = i end
    end
    if text:sub(1, 1) == '<' then
      depth = depth + 1
    elseif text == '>' then
      depth = depth - 1
      if depth == 1 and take.source_first and not take.source_last then take.source_last = i end
      if depth == 0 and not take.last then take.last = i - 1 end
    end
  end
  for _, take in ipairs(takes) do
    if take.guid == guid:upper() then return take end
  end
end

-- A take whose source comes from PCM_Source_CreateFromType('MIDI') has no MIDI data in REAPER, so
-- no PPQ map: MIDI_GetPPQPosFromProjTime returns -1 and MIDI_InsertNote fails. Through the item's
-- state chunk its source gets data (MIDI_TICKS_PER_QN) and an end at the item's end, so it neither
-- loops nor stops early (the recipe of forum.cockos.com/showthread.php?t=100864). Setting the chunk
-- rebuilds the item's takes: returns the new take, looked up again by GUID.
local function give_midi_source_data(item, take, proj)
  local guid = take_guid(take)
  local lines, err = chunk_lines(item)
  if not lines then error(err, 0) end
  local found = chunk_take(lines, guid)
  if not (found and found.source_first and found.source_last) then
    error('the new take is missing from the item state', 0)
  end
  local position_s = reaper.GetMediaItemInfo_Value(item, 'D_POSITION')
  local end_s = position_s + reaper.GetMediaItemInfo_Value(item, 'D_LENGTH')
  local length_qn = reaper.TimeMap2_timeToQN(proj, end_s) - reaper.TimeMap2_timeToQN(proj, position_s)
  local source = {
    '<SOURCE MIDI',
    'HASDATA 1 ' .. MIDI_TICKS_PER_QN .. ' QN',
    string.format('E %d b0 7b 00', math.floor(length_qn * MIDI_TICKS_PER_QN + 0.5)), -- all notes off: the end
    '>',
  }
  local out = table.move(lines, 1, found.source_first - 1, 1, {})
  table.move(source, 1, #source, #out + 1, out)
  table.move(lines, found.source_last + 1, #lines, #out + 1, out)
  if not set_chunk_lines(item, out) then error('REAPER refused the item state', 0) end
  local new_take = reaper.GetMediaItemTakeByGUID(proj, guid)
  if not new_take or reaper.MIDI_GetPPQPosFromProjTime(new_take, position_s) < -0.5 then
    error('REAPER did not accept MIDI in the new take', 0)
  end
  return new_take
end

-- A new MIDI take on the item, with data spanning it (a generated fill adds one per variation).
function apply.add_midi_take(item, proj)
  local take = reaper.AddTakeToMediaItem(item)
  if not take then error('REAPER did not add a take to the item', 0) end
  reaper.SetMediaItemTake_Source(take, reaper.PCM_Source_CreateFromType('MIDI'))
  return give_midi_source_data(item, take, proj)
end

-- Take the take with this GUID out of the item again (through its state chunk) and make the take
-- with active_guid active. Returns true, or nil, why.
local function remove_take(item, proj, guid, active_guid)
  local lines, err = chunk_lines(item)
  if not lines then return nil, err end
  local found = chunk_take(lines, guid)
  if not (found and found.first) then return nil, 'it is missing from the item state' end
  local out = table.move(lines, 1, found.first - 1, 1, {})
  table.move(lines, found.last + 1, #lines, #out + 1, out)
  if not set_chunk_lines(item, out) then return nil, 'REAPER refused the item state' end
  local active = active_guid and reaper.GetMediaItemTakeByGUID(proj, active_guid)
  if active then reaper.SetActiveTake(active) end
  return true
end

-- Writing ------------------------------------------------------------------------------------------

-- Write a plan's notes and CCs into a MIDI take with data that spans the plan's item, sorted. Returns
-- what was written: {notes, ccs, doubled, refused}. Raises when nothing could be written.
function apply.insert_events(take, plan)
  -- Events on ticks inside the source (its end is the all-notes-off at the item's end).
  local last_tick = to_ppq(take, plan.end_s) - 1
  local ticks = {}
  for _, n in ipairs(plan.notes) do
    local start_ppq = math.min(to_ppq(take, n[1]), last_tick)
    ticks[#ticks + 1] = { start_ppq, math.min(math.max(start_ppq + 1, to_ppq(take, n[2])), last_tick + 1), n[3], n[4] }
  end
  local notes, doubled = apply.without_overlaps(ticks)
  -- Of several events of a controller on one tick only the last counts, so REAPER's order of
  -- same-tick events (MIDI_Sort) cannot matter.
  local ccs, final = {}, {}
  for i, c in ipairs(plan.ccs) do
    local tick = c[4] and last_tick or math.max(0, math.min(to_ppq(take, c[1]), last_tick))
    ccs[i] = { tick, c[2], c[3] }
    final[c[2] .. ':' .. tick] = i
  end
  local stats = { notes = 0, ccs = 0, doubled = doubled, refused = 0 }
  for _, n in ipairs(notes) do
    if reaper.MIDI_InsertNote(take, false, false, n[1], n[2], plan.channel, n[3], n[4], true) then
      stats.notes = stats.notes + 1
    else
      stats.refused = stats.refused + 1
    end
  end
  for i, c in ipairs(ccs) do
    if final[c[2] .. ':' .. c[1]] == i then
      if reaper.MIDI_InsertCC(take, false, false, c[1], CC_STATUS, plan.channel, c[2], c[3]) then
        stats.ccs = stats.ccs + 1
      else
        stats.refused = stats.refused + 1
      end
    end
  end
  reaper.MIDI_Sort(take)
  if stats.notes + stats.ccs == 0 then error('REAPER refused all ' .. plural(stats.refused, 'MIDI event'), 0) end
  return stats
end

-- Give the new take its MIDI and make it active. Returns what was written (see insert_events).
local function fill_take(plan, take, id, kind)
  reaper.SetMediaItemTake_Source(take, reaper.PCM_Source_CreateFromType('MIDI'))
  take = give_midi_source_data(plan.item, take, plan.proj)
  reaper.GetSetMediaItemTakeInfo_String(take, 'P_NAME', plan.name .. ' ' .. kind, true)
  reaper.GetSetMediaItemTakeInfo_String(take, RESULT_EXT, id, true)
  local stats = apply.insert_events(take, plan)
  reaper.SetActiveTake(take)
  reaper.UpdateItemInProject(plan.item)
  return stats
end

-- Add the plan's take to its item; what was written (see fill_take). When the take cannot be
-- finished it is removed again, and the error says why.
local function write_take(plan, id, kind)
  local active = reaper.GetActiveTake(plan.item)
  local active_guid = active and take_guid(active)
  local take = reaper.AddTakeToMediaItem(plan.item)
  if not take then error('REAPER did not add a take to the item', 0) end
  local guid = take_guid(take)
  local ok, result = pcall(fill_take, plan, take, id, kind)
  if ok then return result end
  local removed, why = remove_take(plan.item, plan.proj, guid, active_guid)
  if removed then error(tostring(result), 0) end
  error(tostring(result) .. '; the unfinished take it left on the item could not be removed (' .. why
    .. '), delete it by hand', 0)
end

-- One undo block for the plans of one project; each item in its own pcall so the block always
-- closes. Adds what was written to totals; returns how many items got their take.
local function write_group(group, id, kind, handler, failures, totals)
  local done = 0
  reaper.PreventUIRefresh(1)
  reaper.Undo_BeginBlock2(group.proj)
  for _, plan in ipairs(group.plans) do
    local ok, stats = pcall(handler.write, plan, id, kind)
    if ok then
      done = done + 1
      for key, n in pairs(stats) do totals[key] = totals[key] + n end
      totals.dropped = totals.dropped + plan.dropped
      totals.invalid = totals.invalid + plan.invalid
    else
      failures[#failures + 1] = plan.label .. ': ' .. tostring(stats)
    end
  end
  reaper.Undo_EndBlock2(group.proj, handler.undo .. ' (' .. plural(#group.plans, 'item') .. ')', UNDO_STATE_ALL)
  reaper.PreventUIRefresh(-1)
  reaper.UpdateArrange()
  return done
end

-- Moving result files ------------------------------------------------------------------------------

local function outbox_path(dir, id)
  return spool.join(dir, 'outbox', id .. '.json')
end

-- Move the result to failed/ with "apply_error" added; returns the outcome with its console line.
local function reject(dir, id, doc, text, reason, line)
  local target = spool.join(dir, 'failed', id .. '.json')
  local ok, encoded = false, nil
  if type(doc) == 'table' then
    doc.apply_error = reason
    ok, encoded = pcall(json.encode, doc)
  end
  if not ok then encoded = json.encode({ id = id, apply_error = reason, raw = text }) end
  if spool.write_atomic(target, encoded) then
    os.remove(outbox_path(dir, id))
  else
    spool.move(outbox_path(dir, id), target)
  end
  return { state = 'failed', line = line or ('reascribe: ' .. id .. ': ' .. reason) }
end

local function summary(kind, applied, present, totals, failures)
  local parts = {}
  if applied > 0 then
    local left_out = {}
    local function add(count, text)
      if count > 0 then left_out[#left_out + 1] = text end
    end
    add(totals.dropped, plural(totals.dropped, 'event') .. ' outside the item left out')
    add(totals.doubled, plural(totals.doubled, 'doubled note') .. ' left out')
    add(totals.invalid, plural(totals.invalid, 'malformed event') .. ' ignored')
    add(totals.refused, 'REAPER refused ' .. plural(totals.refused, 'MIDI event'))
    local counts = plural(totals.notes, 'note') .. (totals.ccs > 0 and ', ' .. plural(totals.ccs, 'pedal event') or '')
    parts[#parts + 1] = string.format('added a %s take to %s (%s%s)', kind, plural(applied, 'item'), counts,
      #left_out > 0 and '; ' .. table.concat(left_out, '; ') or '')
  end
  if present > 0 then parts[#parts + 1] = plural(present, 'item') .. ' already had it' end
  if #failures > 0 then
    parts[#parts + 1] = plural(#failures, 'item') .. ' failed: ' .. table.concat(failures, '; ')
  end
  return table.concat(parts, '; ')
end

-- How results of a kind are applied: {plan, write, undo, summary}. Transcriptions become takes on
-- their items (chords also name them with markers, reascribe/chords.lua); "separate" and "mix"
-- results new tracks (reascribe/tracks.lua).
local function handler_of(kind)
  if kind == 'separate' or kind == 'mix' then return require('reascribe.tracks')[kind] end
  local handler = {
    plan = apply.plan_item,
    write = write_take,
    undo = 'reascribe: transcribe ' .. kind,
    summary = function(...) return summary(kind, ...) end,
  }
  if kind == 'chords' then return require('reascribe.chords').handler(handler) end -- plus chord markers
  return handler
end

-- Applying -----------------------------------------------------------------------------------------

-- Apply outbox/<id>.json. Returns {state, line}: state is 'done', 'failed', 'already', 'waiting'
-- (its project is not open; the file stays) or 'gone' (the file disappeared meanwhile).
function apply.result(dir, id)
  local text = spool.read_file(outbox_path(dir, id))
  if not text then return { state = 'gone' } end
  local doc, err = json.decode(text)
  if type(doc) ~= 'table' or json.is_array(doc) then
    return reject(dir, id, nil, text, 'The result file is not a reascribe result (' .. (err or 'not a JSON object') .. ').')
  end
  if doc.id ~= id then
    return reject(dir, id, doc, text, 'The result file is named ' .. id .. ' but is for ' .. tostring(doc.id) .. '.')
  end
  if doc.protocol ~= spool.PROTOCOL then
    return reject(dir, id, doc, text, 'The result uses protocol ' .. tostring(doc.protocol) .. ' but these scripts speak '
      .. spool.PROTOCOL .. '; update reascribe and its REAPER scripts to the same version.')
  end
  local kind = type(doc.kind) == 'string' and doc.kind:match('^[%w_]+$') or 'piano'
  local projects = context.open_projects()
  if already_applied(dir, id, projects) then
    spool.move(outbox_path(dir, id), spool.join(dir, 'done', id .. '.json'))
    return { state = 'already', line = 'reascribe: ' .. id .. ' was already applied.' }
  end
  if doc.status ~= 'done' then
    local reason = type(doc.error) == 'string' and doc.error
        or (doc.status == 'cancelled' and 'The job was cancelled.' or 'The transcription failed.')
    return reject(dir, id, doc, text, reason, 'reascribe: ' .. kind .. ' transcription ' .. id .. ': ' .. reason)
  end

  if kind == 'generate' then -- a new item rather than takes on items (reascribe/fill.lua)
    local info = request_info(dir, id, projects)
    local outcome = require('reascribe.fill').apply(doc, id, projects, info.proj)
    if outcome.state == 'failed' then return reject(dir, id, doc, text, outcome.reason) end
    if outcome.state == 'done' then
      spool.mark_applied(dir, id)
      reaper.SetProjExtState(outcome.proj, spool.EXT_SECTION, 'applied:' .. id, '1')
      reaper.SetProjExtState(outcome.proj, spool.EXT_SECTION, 'request:' .. id, '')
      spool.move(outbox_path(dir, id), spool.join(dir, 'done', id .. '.json'))
    end
    return outcome
  end
  local handler = handler_of(kind)
  local info = request_info(dir, id, projects)
  local groups, by_proj, failures, missing = {}, {}, {}, 0
  local found, present = false, 0
  for n, r in ipairs(list(doc.items)) do
    if type(r) ~= 'table' or type(r.take_guid) ~= 'string' then
      failures[#failures + 1] = 'item ' .. n .. ' of the result is malformed'
    elseif r.status ~= 'done' then
      failures[#failures + 1] = type(r.error) == 'string' and r.error or ('item ' .. n .. ' was not transcribed')
    else
      local take, proj = find_take(projects, r.take_guid, info.proj)
      if not take then
        missing = missing + 1
      else
        found = true
        local plan, why = handler.plan(take, proj, r, info.sources[r.take_guid], id, kind)
        if plan == 'present' then
          present = present + 1
          by_proj[proj] = by_proj[proj] or { proj = proj, plans = {} }
        elseif plan then
          if not by_proj[proj] then
            by_proj[proj] = { proj = proj, plans = {} }
            groups[#groups + 1] = by_proj[proj]
          end
          table.insert(by_proj[proj].plans, plan)
        else
          failures[#failures + 1] = why
        end
      end
    end
  end
  if missing > 0 and not found and not info.proj then return { state = 'waiting' } end
  for _ = 1, missing do failures[#failures + 1] = 'the item was deleted' end

  local applied = 0
  local totals = { notes = 0, ccs = 0, dropped = 0, doubled = 0, invalid = 0, refused = 0 }
  for _, group in ipairs(groups) do
    applied = applied + write_group(group, id, kind, handler, failures, totals)
  end
  local text_line = handler.summary(applied, present, totals, failures)
  if applied + present == 0 then
    local reason = #failures > 0 and ('No item could be applied: ' .. table.concat(failures, '; ') .. '.')
        or 'The result names no items.'
    return reject(dir, id, doc, text, reason, 'reascribe: ' .. id .. ': ' .. (#failures > 0 and text_line .. '.' or reason))
  end
  spool.mark_applied(dir, id)
  if info.proj then by_proj[info.proj] = by_proj[info.proj] or { proj = info.proj } end
  for proj in pairs(by_proj) do
    reaper.SetProjExtState(proj, spool.EXT_SECTION, 'applied:' .. id, '1')
    reaper.SetProjExtState(proj, spool.EXT_SECTION, 'request:' .. id, '')
  end
  spool.move(outbox_path(dir, id), spool.join(dir, 'done', id .. '.json'))
  return { state = 'done', line = 'reascribe: ' .. id .. ': ' .. text_line .. '.' }
end

-- apply.result, but a Lua error (a bug, or REAPER refusing a call) fails only that result.
function apply.safe_result(dir, id)
  local ok, outcome = xpcall(apply.result, debug.traceback, dir, id)
  if ok then return outcome end
  local text = spool.read_file(outbox_path(dir, id))
  if not text then return { state = 'gone', line = 'reascribe: ' .. id .. ': ' .. tostring(outcome) } end
  return reject(dir, id, json.decode(text), text, 'reascribe could not apply this result: ' .. tostring(outcome))
end

-- Apply every result in outbox/ (the one-shot action); returns the console lines.
function apply.all(dir)
  local lines = {}
  for _, id in ipairs(spool.list(spool.join(dir, 'outbox'))) do
    local outcome = apply.safe_result(dir, id)
    if outcome.line then lines[#lines + 1] = outcome.line end
  end
  return lines
end

return apply
