-- @noindex
-- reascribe/spool.lua: the spool folder shared with the daemon (docs/protocol.md).
--
-- Where it is, atomic writes (.tmp then rename), listings, request ids, heartbeats and the log of
-- applied results. File errors are returned as nil, message; nothing here prints or raises.

local json = require('reascribe.json')

local spool = {}

spool.PROTOCOL = 1 -- docs/protocol.md: the version requests carry and results must carry
spool.EXT_SECTION = 'reascribe' -- ExtState and ProjExtState section of every reascribe key
spool.SETTINGS_FILE = 'reascribe_settings.lua'
spool.ENV_VAR = 'REASCRIBE_SPOOL'
spool.HEARTBEAT_STALE_S = 10 -- a heartbeat older than this means its writer is gone
spool.DAEMON_HEARTBEAT = 'daemon.heartbeat'
spool.BRIDGE_HEARTBEAT = 'bridge.heartbeat'
spool.BRIDGE_LOCK = 'bridge.lock'
spool.APPLIED_LOG = 'applied.log'
spool.SUBDIRS = { 'inbox', 'outbox', 'done', 'failed', 'jobs', 'cancel' }

local SEP = package.config:sub(1, 1) -- '\' on Windows, '/' elsewhere
local MAX_ID_LENGTH = 64

function spool.join(...)
  local parts = { ... }
  local path = parts[1]
  for i = 2, #parts do
    if path:sub(-1) == '/' or path:sub(-1) == '\\' then
      path = path .. parts[i]
    else
      path = path .. SEP .. parts[i]
    end
  end
  return path
end

function spool.dirname(path)
  return path:match('^(.*)[/\\][^/\\]*$') or ''
end

-- Request ids: 1 to 64 characters from A-Z a-z 0-9 _ -, starting with a letter or digit.
function spool.is_valid_id(id)
  return type(id) == 'string' and #id <= MAX_ID_LENGTH and id:match('^[A-Za-z0-9][A-Za-z0-9_%-]*$') ~= nil
end

-- "YYYYMMDDTHHMMSS-<8 hex>" in UTC: ids sort by creation time.
function spool.new_id(now)
  return os.date('!%Y%m%dT%H%M%S', now or os.time()) .. string.format('-%08x', math.random(0, 0xFFFFFFFF))
end

local function exists(path)
  local f = io.open(path, 'rb')
  if not f then return false end
  f:close()
  return true
end

-- The folder above a folder path that ends with a separator ("a/b/" -> "a/"), or nil.
local function parent_dir(dir)
  return dir:match('^(.*[/\\])[^/\\]+[/\\]$')
end

-- Settings of `reascribe install-reaper`: reascribe_settings.lua returning a table, next to the script
-- or one folder up (install-reaper writes it into Scripts/reascribe/, ReaPack installs the scripts into
-- Scripts/reascribe/<category>/). Returns the table ({} when there is none) and, when the file exists
-- but is broken, a message.
function spool.read_settings(script_dir)
  local path = script_dir .. spool.SETTINGS_FILE
  if not exists(path) then
    local up = parent_dir(script_dir)
    path = up and up .. spool.SETTINGS_FILE
    if not path or not exists(path) then return {} end
  end
  local chunk, err = loadfile(path, 't', {})
  if not chunk then return {}, err end
  local ok, value = pcall(chunk)
  if not ok then return {}, path .. ': ' .. tostring(value) end
  if type(value) ~= 'table' then return {}, path .. ' must return a table like { spool_dir = "..." }' end
  return value
end

local function expand_home(path)
  local home = os.getenv('HOME') or os.getenv('USERPROFILE')
  if home and (path == '~' or path:match('^~[/\\]')) then return home .. path:sub(2) end
  return path
end

-- The spool folder: settings' spool_dir, else $REASCRIBE_SPOOL, else the per-user default.
function spool.resolve_dir(settings)
  local configured = settings and settings.spool_dir
  if type(configured) == 'string' and configured ~= '' then return expand_home(configured) end
  local env = os.getenv(spool.ENV_VAR)
  if env and env ~= '' then return expand_home(env) end
  if SEP == '\\' then
    local appdata = os.getenv('APPDATA') or ((os.getenv('USERPROFILE') or '') .. '\\AppData\\Roaming')
    return appdata .. '\\reascribe\\spool'
  end
  return (os.getenv('HOME') or '') .. '/.reascribe/spool'
end

-- What every entry script starts with: its settings (see read_settings) and the spool folder they
-- choose. A broken settings file is ignored and said through print(line).
function spool.configure(script_dir, print)
  local settings, err = spool.read_settings(script_dir)
  if err then print('reascribe: ignoring broken settings: ' .. err) end
  return settings, spool.resolve_dir(settings)
end

-- Create the folders the scripts write into; true or nil, message.
function spool.ensure(dir)
  for _, sub in ipairs(spool.SUBDIRS) do
    local path = spool.join(dir, sub)
    if reaper.RecursiveCreateDirectory(path, 0) == 0 then
      return nil, 'cannot create the folder ' .. path
    end
  end
  return true
end

function spool.read_file(path)
  local f, err = io.open(path, 'rb')
  if not f then return nil, err end
  local data = f:read('a')
  f:close()
  if not data then return nil, 'cannot read ' .. path end
  return data
end

-- Decoded JSON of a file, or nil, message.
function spool.read_json(path)
  local data, err = spool.read_file(path)
  if not data then return nil, err end
  return json.decode(data)
end

-- Rename, replacing the target. Windows refuses to rename onto an existing file: then the target is
-- removed and the rename tried again, but only while the source is still there (when it is gone,
-- someone else moved it and the target is theirs).
function spool.move(src, dst)
  local ok, err = os.rename(src, dst)
  if ok then return true end
  if not (exists(src) and exists(dst)) then return nil, err end
  os.remove(dst)
  ok, err = os.rename(src, dst)
  if ok then return true end
  return nil, err
end

-- Write to <path>.tmp, then rename onto path: readers see the old file or the whole new one.
function spool.write_atomic(path, data)
  local tmp = path .. '.tmp'
  local f, err = io.open(tmp, 'wb')
  if not f then return nil, err end
  local written, werr = f:write(data)
  local closed, cerr = f:close()
  if not written or not closed then
    os.remove(tmp)
    return nil, werr or cerr
  end
  local ok, rerr = spool.move(tmp, path)
  if not ok then
    os.remove(tmp)
    return nil, rerr
  end
  return true
end

function spool.write_json(path, doc)
  return spool.write_atomic(path, json.encode(doc))
end

-- Ids of the <id>.json files in a folder, sorted. The directory cache is refreshed first.
function spool.list(dir)
  reaper.EnumerateFiles(dir, -1)
  local ids, i = {}, 0
  while true do
    local name = reaper.EnumerateFiles(dir, i)
    if not name then break end
    local id = name:match('^(.+)%.json$')
    if spool.is_valid_id(id) then ids[#ids + 1] = id end
    i = i + 1
  end
  table.sort(ids)
  return ids
end

-- Heartbeats ---------------------------------------------------------------------------------------

-- Age in seconds of a heartbeat file's "time", or nil when it is missing or unreadable.
function spool.heartbeat_age(dir, name)
  local doc = spool.read_json(spool.join(dir, name))
  if type(doc) ~= 'table' or type(doc.time) ~= 'number' then return nil end
  return os.time() - doc.time
end

function spool.is_alive(dir, name)
  local age = spool.heartbeat_age(dir, name)
  return age ~= nil and age <= spool.HEARTBEAT_STALE_S
end

-- Applied results ----------------------------------------------------------------------------------

function spool.is_applied(dir, id)
  local f = io.open(spool.join(dir, spool.APPLIED_LOG), 'rb')
  if not f then return false end
  for line in f:lines() do
    if line:gsub('%s+$', '') == id then
      f:close()
      return true
    end
  end
  f:close()
  return false
end

function spool.mark_applied(dir, id)
  local f, err = io.open(spool.join(dir, spool.APPLIED_LOG), 'ab')
  if not f then return nil, err end
  f:write(id, '\n')
  f:close()
  return true
end

return spool
