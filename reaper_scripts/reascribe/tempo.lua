-- @noindex
-- reascribe/tempo.lua: the project's tempo map as the request's "tempo_map" object.

local json = require('reascribe.json')

local tempo = {}

-- {bpm, num, denom, markers = [{time_s, bpm, num, denom, linear}]}: the tempo and time signature at
-- the project start, then every tempo/time-signature marker. A marker that changes only the tempo
-- reports no time signature (0), so it keeps the one before it.
function tempo.map(proj)
  local num, denom, bpm = reaper.TimeMap_GetTimeSigAtTime(proj, 0)
  local out = { bpm = bpm, num = num, denom = denom, markers = json.array() }
  local cur_num, cur_denom = num, denom
  for i = 0, reaper.CountTempoTimeSigMarkers(proj) - 1 do
    local ok, time_s, _, _, marker_bpm, marker_num, marker_denom, linear = reaper.GetTempoTimeSigMarker(proj, i)
    if ok then
      if marker_num > 0 and marker_denom > 0 then cur_num, cur_denom = marker_num, marker_denom end
      out.markers[#out.markers + 1] = {
        time_s = time_s, bpm = marker_bpm, num = cur_num, denom = cur_denom, linear = linear and true or false,
      }
    end
  end
  return out
end

return tempo
