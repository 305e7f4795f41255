-- @noindex
-- reascribe/actions.lua: the reascribe actions and their command ids.

local actions = {}

actions.MAIN_SECTION = 0
actions.TRANSCRIBE_PIANO = 'reascribe_Transcribe piano.lua'
actions.TRANSCRIBE_DRUMS = 'reascribe_Transcribe drums.lua'
actions.TRANSCRIBE_CHORDS = 'reascribe_Transcribe chords.lua'
actions.SEPARATE = 'reascribe_Separate.lua'
actions.TRANSCRIBE_MIX = 'reascribe_Transcribe from mix.lua'
actions.GENERATE_FILL = 'reascribe_Generate fill.lua'
actions.BRIDGE = 'reascribe_Bridge.lua'
actions.APPLY = 'reascribe_Apply results.lua'
actions.SHOW_JOBS = 'reascribe_Show jobs.lua'
actions.ALL = {
  actions.TRANSCRIBE_PIANO, actions.TRANSCRIBE_DRUMS, actions.TRANSCRIBE_CHORDS, actions.SEPARATE, actions.TRANSCRIBE_MIX, actions.BRIDGE,
  actions.GENERATE_FILL, actions.SHOW_JOBS, actions.APPLY,
}

-- The command id of a script next to this library, registering it if needed (0 on failure).
-- AddRemoveReaScript returns the existing id of a script that is already in the action list.
function actions.command_id(script_dir, file)
  return reaper.AddRemoveReaScript(true, actions.MAIN_SECTION, script_dir .. file, true)
end

-- The "_RS..." name other programs use to run a command (OSC /action/_RS..., web interface).
function actions.named(cmd)
  local name = cmd ~= 0 and reaper.ReverseNamedCommandLookup(cmd)
  return name and ('_' .. name) or ''
end

function actions.is_on(cmd)
  return reaper.GetToggleCommandStateEx(actions.MAIN_SECTION, cmd) == 1
end

return actions
