-- @noindex
-- reascribe/context.lua: what a request says about the project and the selected items.

local json = require('reascribe.json')
local spool = require('reascribe.spool')

local context = {}

context.MAX_ITEMS = 256 -- the daemon refuses larger requests
local LOOP_TOLERANCE_S = 0.001 -- an item this much longer than one pass of its file does not loop

-- The open project tabs in order: { {proj = ReaProject, file = ".rpp path or ''"}, ... }.
function context.open_projects()
  local out, i = {}, 0
  while true do
    local proj, file = reaper.EnumProjects(i)
    if not proj then return out end
    out[#out + 1] = { proj = proj, file = file or '' }
    i = i + 1
  end
end

-- The root of a source chain (sections and reversed sources wrap their parent).
function context.root_source(source)
  local parent = reaper.GetMediaSourceParent(source)
  while parent do
    source, parent = parent, reaper.GetMediaSourceParent(parent)
  end
  return source
end

-- The audio file a take plays, or nil, reason (a sentence part, e.g. "is a MIDI item").
function context.take_source_path(take)
  local source = reaper.GetMediaItemTake_Source(take)
  if not source then return nil, 'has no source' end
  local root = context.root_source(source)
  if reaper.GetMediaSourceType(root, '') == 'MIDI' then return nil, 'is a MIDI item' end
  local path = reaper.GetMediaSourceFileName(root, '')
  if path == '' then return nil, 'has no audio file' end
  return path
end

function context.file_size(path)
  local f, err = io.open(path, 'rb')
  if not f then return nil, err end
  local size = f:seek('end')
  f:close()
  return size
end

-- Why the item does not simply play [start offset, start offset + length * playrate] of its file, as
-- the rest of a sentence that starts with the take's name and ends with "first." or ", then ...";
-- nil when it does. The request sends the root file and its seconds, so a section (reversed takes are
-- sections too: D_STARTOFFS counts inside them) or a loop would transcribe the wrong audio.
function context.playback_problem(item, take)
  local source = reaper.GetMediaItemTake_Source(take)
  if not source then return nil end
  if reaper.GetMediaSourceParent(source) then
    return 'plays a section of its file or is reversed; glue it (Item > Glue items)'
  end
  local length, is_qn = reaper.GetMediaSourceLength(source)
  if is_qn or not (length > 0) then return nil end
  local offset = reaper.GetMediaItemTakeInfo_Value(take, 'D_STARTOFFS')
  local item_s = reaper.GetMediaItemInfo_Value(item, 'D_LENGTH')
  local last = offset + item_s * reaper.GetMediaItemTakeInfo_Value(take, 'D_PLAYRATE')
  if reaper.GetMediaItemInfo_Value(item, 'B_LOOPSRC') ~= 0 then
    if offset < 0 or offset >= length or last > length + LOOP_TOLERANCE_S then
      return 'loops its audio; reascribe transcribes one pass — trim the item to one pass or glue it'
    end
  elseif offset >= length then
    return 'starts after the end of its audio file, so it plays nothing; set an earlier "Start in source" in its'
      .. ' item properties'
  end
  return nil
end

function context.take_name(take)
  local _, name = reaper.GetSetMediaItemTakeInfo_String(take, 'P_NAME', '', false)
  return name
end

local function track_name(item)
  local track = reaper.GetMediaItem_Track(item)
  if not track then return '' end
  local _, name = reaper.GetSetMediaTrackInfo_String(track, 'P_NAME', '', false)
  return name
end

-- The request entry of one item (docs/protocol.md), or nil, sentence saying why it is skipped.
function context.item_entry(item)
  local take = reaper.GetActiveTake(item)
  if not take then
    return nil, string.format('The empty item at %.2f s on track "%s" has no take.',
      reaper.GetMediaItemInfo_Value(item, 'D_POSITION'), track_name(item))
  end
  local name = context.take_name(take)
  local path, why = context.take_source_path(take)
  if not path then return nil, string.format('"%s" %s.', name, why) end
  local problem = context.playback_problem(item, take)
  if problem then return nil, string.format('"%s" %s first.', name, problem) end
  local size, err = context.file_size(path)
  if not size then return nil, string.format('"%s": its audio file cannot be read (%s).', name, err) end
  local _, item_guid = reaper.GetSetMediaItemInfo_String(item, 'GUID', '', false)
  local _, take_guid = reaper.GetSetMediaItemTakeInfo_String(take, 'GUID', '', false)
  return {
    item_guid = item_guid,
    take_guid = take_guid,
    name = name,
    track = track_name(item),
    source = { path = path, size_bytes = size },
    position_s = reaper.GetMediaItemInfo_Value(item, 'D_POSITION'),
    length_s = reaper.GetMediaItemInfo_Value(item, 'D_LENGTH'),
    start_offset_s = reaper.GetMediaItemTakeInfo_Value(take, 'D_STARTOFFS'),
    playrate = reaper.GetMediaItemTakeInfo_Value(take, 'D_PLAYRATE'),
    loop = reaper.GetMediaItemInfo_Value(item, 'B_LOOPSRC') ~= 0,
    stretch_markers = math.floor(reaper.GetTakeNumStretchMarkers(take)),
  }
end

-- Entries for the selected items with an audio take, and sentences about the ones skipped.
function context.selected_items(proj)
  local entries, skipped = json.array(), {}
  for i = 0, reaper.CountMediaItems(proj) - 1 do
    local item = reaper.GetMediaItem(proj, i)
    if reaper.IsMediaItemSelected(item) then
      local entry, why = context.item_entry(item)
      if entry then
        entries[#entries + 1] = entry
      else
        skipped[#skipped + 1] = why
      end
    end
  end
  return entries, skipped
end

-- The request's "project": .rpp path ("" when unsaved), its folder and the recording folder.
function context.project(proj, file)
  local media_dir = reaper.GetProjectPathEx(proj, '')
  local dir = file ~= '' and spool.dirname(file) or media_dir
  return { file = file, dir = dir, media_dir = media_dir }
end

function context.time_selection(proj)
  local start_s, end_s = reaper.GetSet_LoopTimeRange2(proj, false, false, 0, 0, false)
  if end_s <= start_s then return json.null end
  return { start_s = start_s, end_s = end_s }
end

return context
