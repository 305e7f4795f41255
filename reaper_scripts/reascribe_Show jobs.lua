-- @noindex
-- reascribe: Show jobs (part of the "reascribe: Transcribe piano" package)
--
-- A small window with the daemon's queued and running jobs, a progress bar each and a Cancel
-- button (it writes cancel/<id> into the spool). Close it with Escape or its close box; running the
-- action again closes it too.

local SCRIPT_DIR = debug.getinfo(1, 'S').source:match('^@?(.*[/\\])') or ''
package.path = SCRIPT_DIR .. '?.lua;' .. package.path

local jobs = require('reascribe.jobs')
local spool = require('reascribe.spool')

local TITLE = 'reascribe jobs'
local TERMINATE_ON_RELAUNCH = 1
local REFRESH_S = 0.5 -- seconds between re-reading the progress files
local KEY_ESCAPE = 27
local MOUSE_LEFT = 1
local MARGIN, ROW_H = 10, 46 -- pixels
local WINDOW_W = 520
local BAR_W, BAR_H = 380, 8
local BUTTON_W, BUTTON_H = 90, 22
local MAX_ROWS = 8

local view = {
  jobs = {}, finished = {}, cancelled = {}, buttons = {}, next_refresh = -math.huge, last_cap = 0,
  height = 0, -- of the window; 0 before it opens
}

local function console(line)
  reaper.ShowConsoleMsg(line .. '\n')
end

local function inside(box, x, y)
  return x >= box.x and x < box.x + box.w and y >= box.y and y < box.y + box.h
end

-- The text, shortened with "..." until it is at most width pixels wide.
local function fit(text, width)
  while #text > 4 and gfx.measurestr(text) > width do text = text:sub(1, -5) .. '...' end
  return text
end

function view.refresh(dir, now)
  if now < view.next_refresh then return end
  view.next_refresh = now + REFRESH_S
  view.jobs = jobs.active(dir, view.finished)
end

-- Window height for the current rows (at least one: "Nothing is queued or running.").
function view.wanted_height()
  return MARGIN * 2 + math.max(1, math.min(#view.jobs, MAX_ROWS)) * ROW_H
end

-- Open the window, or resize it when the number of rows changed (gfx.init with an empty title
-- resizes the open window), so every Cancel button stays inside it.
function view.fit_window()
  local height = view.wanted_height()
  if height == view.height then return end
  gfx.init(view.height == 0 and TITLE or '', WINDOW_W, height)
  view.height = height
end

function view.draw()
  view.buttons = {}
  if #view.jobs == 0 then
    gfx.set(0.8, 0.8, 0.8)
    gfx.x, gfx.y = MARGIN, MARGIN
    gfx.drawstr('Nothing is queued or running.')
    return
  end
  for row, job in ipairs(view.jobs) do
    if row > MAX_ROWS then break end
    local y = MARGIN + (row - 1) * ROW_H
    gfx.set(0.9, 0.9, 0.9)
    gfx.x, gfx.y = MARGIN, y
    gfx.drawstr(fit(jobs.describe(job), WINDOW_W - 2 * MARGIN))
    gfx.set(0.35, 0.35, 0.35)
    gfx.rect(MARGIN, y + 24, BAR_W, BAR_H, 0)
    gfx.set(0.3, 0.7, 0.4)
    gfx.rect(MARGIN, y + 24, math.floor(BAR_W * job.progress + 0.5), BAR_H, 1)
    local button = { id = job.id, x = WINDOW_W - MARGIN - BUTTON_W, y = y + 17, w = BUTTON_W, h = BUTTON_H }
    view.buttons[#view.buttons + 1] = button
    gfx.set(0.6, 0.6, 0.6)
    gfx.rect(button.x, button.y, button.w, button.h, 0)
    gfx.x, gfx.y = button.x + 8, button.y + 3
    gfx.drawstr(view.cancelled[job.id] and 'Cancelling' or 'Cancel')
  end
end

-- A left click (press) on a Cancel button asks the daemon to cancel that job.
function view.handle_mouse(dir)
  local pressed = gfx.mouse_cap & MOUSE_LEFT == MOUSE_LEFT and view.last_cap & MOUSE_LEFT == 0
  view.last_cap = gfx.mouse_cap
  if not pressed then return end
  for _, button in ipairs(view.buttons) do
    if inside(button, gfx.mouse_x, gfx.mouse_y) and not view.cancelled[button.id] then
      local ok, err = jobs.cancel(dir, button.id)
      if ok then
        view.cancelled[button.id] = true
        console('reascribe: asked the daemon to cancel ' .. button.id .. '.')
      else
        console('reascribe: cannot cancel ' .. button.id .. ': ' .. tostring(err))
      end
    end
  end
end

local _, dir = spool.configure(SCRIPT_DIR, console)

local function loop()
  local char = gfx.getchar()
  if char < 0 or char == KEY_ESCAPE then
    gfx.quit()
    return
  end
  view.refresh(dir, reaper.time_precise())
  view.fit_window()
  view.draw()
  view.handle_mouse(dir)
  gfx.update()
  reaper.defer(loop)
end

view.refresh(dir, reaper.time_precise())
if #view.jobs == 0 then
  reaper.ShowMessageBox('No reascribe jobs are queued or running.', 'reascribe', 0)
  reaper.defer(function() end)
else
  if reaper.set_action_options then reaper.set_action_options(TERMINATE_ON_RELAUNCH) end
  reaper.atexit(gfx.quit)
  view.fit_window()
  loop()
end
