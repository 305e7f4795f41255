-- @noindex
-- reascribe/jobs.lua: the daemon's progress files (jobs/<id>.json) and cancel requests.

local spool = require('reascribe.spool')

local jobs = {}

local ACTIVE = { queued = true, running = true }
local FINAL = { done = true, failed = true, cancelled = true } -- the daemon never changes these files again
local PROGRESS_STEP = 0.1 -- the console gets a line per 10 % of progress, not per update
local MAX_MESSAGE = 60 -- characters of the daemon's message shown per job

-- Every readable progress file, sorted by id (oldest first), with fields checked. finished (optional,
-- kept by the caller between calls): ids of files seen in a final state; they are left out and never
-- read again (the bridge polls often). Ids whose file is gone are forgotten.
function jobs.read_all(dir, finished)
  local folder = spool.join(dir, 'jobs')
  local out, listed = {}, {}
  for _, id in ipairs(spool.list(folder)) do
    listed[id] = true
    local doc = not (finished and finished[id]) and spool.read_json(spool.join(folder, id .. '.json'))
    if finished and type(doc) == 'table' and FINAL[doc.state] then finished[id] = true end
    if type(doc) == 'table' and type(doc.state) == 'string' then
      local progress = tonumber(doc.progress) or 0
      out[#out + 1] = {
        id = id,
        kind = type(doc.kind) == 'string' and doc.kind or '',
        state = doc.state,
        progress = math.max(0, math.min(1, progress == progress and progress or 0)),
        message = type(doc.message) == 'string' and doc.message or '',
      }
    end
  end
  for id in pairs(finished or {}) do
    if not listed[id] then finished[id] = nil end
  end
  return out
end

function jobs.active(dir, finished)
  local out = {}
  for _, job in ipairs(jobs.read_all(dir, finished)) do
    if ACTIVE[job.state] then out[#out + 1] = job end
  end
  return out
end

function jobs.percent(job)
  return math.floor(job.progress * 100 + 0.5)
end

-- "piano 20261121T121500-5f3a9c01: running 45% (separating chunks)"
function jobs.describe(job)
  local text = string.format('%s %s: %s', job.kind, job.id, job.state)
  if job.state == 'running' then text = text .. string.format(' %d%%', jobs.percent(job)) end
  if job.message ~= '' then
    local message = job.message
    if #message > MAX_MESSAGE then message = message:sub(1, MAX_MESSAGE - 3) .. '...' end
    text = text .. ' (' .. message .. ')'
  end
  return text
end

function jobs.cancel(dir, id)
  if not spool.is_valid_id(id) then return nil, 'not a job id: ' .. tostring(id) end
  local f, err = io.open(spool.join(dir, 'cancel', id), 'wb')
  if not f then return nil, err end
  f:close()
  return true
end

-- Lines for the active jobs whose state, message or progress step changed since the last call.
function jobs.changes(seen, list)
  local lines, present = {}, {}
  for _, job in ipairs(list) do
    if ACTIVE[job.state] then
      present[job.id] = true
      local key = job.state .. '|' .. math.floor(job.progress / PROGRESS_STEP + 1e-9) .. '|' .. job.message
      if seen[job.id] ~= key then
        seen[job.id] = key
        lines[#lines + 1] = 'reascribe: ' .. jobs.describe(job)
      end
    end
  end
  for id in pairs(seen) do
    if not present[id] then seen[id] = nil end
  end
  return lines
end

return jobs
