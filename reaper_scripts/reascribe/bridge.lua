-- @noindex
-- reascribe/bridge.lua: the background bridge's work, one bounded step per defer tick.
--
-- Every POLL_S it lists outbox/ and prints job progress that changed; every HEARTBEAT_S it refreshes
-- its lock and bridge.heartbeat. It applies at most one result per tick and never opens a dialog.
-- One bridge per spool: a second one (another REAPER on the same spool) waits until the first
-- one's lock is stale, then takes over.

local apply = require('reascribe.apply')
local context = require('reascribe.context')
local jobs = require('reascribe.jobs')
local spool = require('reascribe.spool')

local bridge = {}
bridge.__index = bridge

local POLL_S = 0.5 -- seconds between outbox/jobs listings
local HEARTBEAT_S = 2.0 -- seconds between heartbeats (docs/protocol.md)
local LOCK_STALE_S = spool.HEARTBEAT_STALE_S

-- dir: the spool folder; apply_action: "_RS..." name of "reascribe: Apply results" for the daemon;
-- print: function(line) for the console.
function bridge.new(dir, apply_action, print)
  return setmetatable({
    dir = dir,
    apply_action = apply_action,
    print = print,
    token = string.format('%d-%08x', os.time(), math.random(0, 0xFFFFFFFF)),
    owner = false,
    told_waiting = false,
    queue = {},
    waiting = {}, -- result ids whose project is not open, retried when the open projects change
    projects_key = '',
    seen_jobs = {},
    finished_jobs = {}, -- ids of progress files in a final state: they never change, so are not read again
    next_poll = -math.huge,
    next_beat = -math.huge,
  }, bridge)
end

-- Changes when a project is opened, closed or saved under another name.
local function projects_key()
  local parts = {}
  for _, p in ipairs(context.open_projects()) do parts[#parts + 1] = tostring(p.proj) .. '=' .. p.file end
  return table.concat(parts, '\n')
end

function bridge:lock_path()
  return spool.join(self.dir, spool.BRIDGE_LOCK)
end

-- Refresh the lock and the heartbeat. Returns false when another bridge took the lock from us.
function bridge:beat()
  local lock = spool.read_json(self:lock_path())
  local other = type(lock) == 'table' and lock.token ~= self.token and type(lock.time) == 'number'
      and os.time() - lock.time <= LOCK_STALE_S
  if other then
    if self.owner then
      self.owner = false
      self.print('reascribe: another REAPER took over the bridge for ' .. self.dir .. '; this one stops.')
      return false
    end
    if not self.told_waiting then
      self.told_waiting = true
      self.print('reascribe: another REAPER runs the bridge for ' .. self.dir .. '; this one waits.')
    end
    return true
  end
  self.owner = true
  local now = os.time()
  spool.write_json(self:lock_path(), { token = self.token, time = now })
  spool.write_json(spool.join(self.dir, spool.BRIDGE_HEARTBEAT), {
    time = now, reaper = reaper.GetAppVersion(), apply_action = self.apply_action,
  })
  return true
end

function bridge:poll()
  for _, line in ipairs(jobs.changes(self.seen_jobs, jobs.read_all(self.dir, self.finished_jobs))) do
    self.print('!SHOW:' .. line)
  end
  local key = projects_key()
  if key ~= self.projects_key then
    self.projects_key, self.waiting = key, {}
  end
  if #self.queue == 0 then
    for _, id in ipairs(spool.list(spool.join(self.dir, 'outbox'))) do
      if not self.waiting[id] then self.queue[#self.queue + 1] = id end
    end
  end
end

-- One defer tick at time now (seconds, reaper.time_precise). Returns false when the bridge must stop.
function bridge:tick(now)
  if now >= self.next_poll then
    self.next_poll = now + POLL_S
    if now >= self.next_beat then
      self.next_beat = now + HEARTBEAT_S
      if not self:beat() then return false end
    end
    if self.owner then self:poll() end
  end
  local id = self.owner and table.remove(self.queue, 1)
  if id then
    local outcome = apply.safe_result(self.dir, id)
    if outcome.state == 'waiting' then self.waiting[id] = true end
    if outcome.line then self.print(outcome.line) end
  end
  return true
end

-- At exit: give the lock and the heartbeat back so the daemon and other bridges see we are gone.
function bridge:stop()
  local lock = spool.read_json(self:lock_path())
  if type(lock) == 'table' and lock.token == self.token then
    os.remove(self:lock_path())
    os.remove(spool.join(self.dir, spool.BRIDGE_HEARTBEAT))
  end
  self.owner = false
end

return bridge
