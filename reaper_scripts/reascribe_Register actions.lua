-- @noindex
-- reascribe: Register actions. Load and run it once (Actions > Show action list > New action >
-- Load ReaScript...) after `reascribe install-reaper`: it adds every reascribe action.
-- ReaPack users do not need it: ReaPack registers the actions itself.

local SCRIPT_DIR = debug.getinfo(1, 'S').source:match('^@?(.*[/\\])') or ''
package.path = SCRIPT_DIR .. '?.lua;' .. package.path

local actions = require('reascribe.actions')

local added, missing = {}, {}
for _, file in ipairs(actions.ALL) do
  local name = file:gsub('^reascribe_', 'reascribe: '):gsub('%.lua$', '')
  if actions.command_id(SCRIPT_DIR, file) ~= 0 then
    added[#added + 1] = '    ' .. name
  else
    missing[#missing + 1] = '    ' .. SCRIPT_DIR .. file
  end
end
local text = 'Added these actions (search "reascribe" in the action list):\n\n' .. table.concat(added, '\n')
if #missing > 0 then
  text = text .. '\n\nThese scripts are missing; run `reascribe install-reaper` again:\n' .. table.concat(missing, '\n')
end
reaper.ShowMessageBox(text, 'reascribe', 0)
reaper.defer(function() end)
