-- @noindex
-- reascribe/json.lua: JSON (RFC 8259) encoder and decoder for the spool files.
--
-- decode(text) returns value or nil, message; it never raises, whatever the input. Arrays decode
-- to tables marked with json.array (so they encode back as arrays, even when empty), null to
-- json.null. encode(value) raises on values JSON cannot carry (functions, NaN, mixed tables).

local json = {}

local MAX_DEPTH = 200 -- nesting deeper than this is rejected rather than risking the C stack
local ARRAY_MT = { __name = 'json.array' }

json.null = setmetatable({}, { __name = 'json.null', __tostring = function() return 'null' end })

function json.array(t)
  return setmetatable(t or {}, ARRAY_MT)
end

function json.is_array(t)
  return type(t) == 'table' and getmetatable(t) == ARRAY_MT
end

-- Encoding ----------------------------------------------------------------------------------------

local ESCAPES = {
  ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
  ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t',
}

-- Well-formed UTF-8 sequences (no overlongs, no surrogates, nothing above U+10FFFF).
local UTF8_SEQUENCES = {
  '^[\xC2-\xDF][\x80-\xBF]',
  '^\xE0[\xA0-\xBF][\x80-\xBF]',
  '^[\xE1-\xEC\xEE\xEF][\x80-\xBF][\x80-\xBF]',
  '^\xED[\x80-\x9F][\x80-\xBF]',
  '^\xF0[\x90-\xBF][\x80-\xBF][\x80-\xBF]',
  '^[\xF1-\xF3][\x80-\xBF][\x80-\xBF][\x80-\xBF]',
  '^\xF4[\x80-\x8F][\x80-\xBF][\x80-\xBF]',
}
local REPLACEMENT = '\xEF\xBF\xBD' -- U+FFFD

-- Replace every byte that is not part of well-formed UTF-8 with U+FFFD.
local function valid_utf8(s)
  if not s:find('[\x80-\xFF]') then return s end
  local out, pos, n = {}, 1, #s
  while pos <= n do
    local ascii_end = s:find('[\x80-\xFF]', pos)
    if not ascii_end then
      out[#out + 1] = s:sub(pos)
      break
    end
    out[#out + 1] = s:sub(pos, ascii_end - 1)
    pos = ascii_end
    local seq
    for _, pattern in ipairs(UTF8_SEQUENCES) do
      seq = s:match(pattern, pos)
      if seq then break end
    end
    out[#out + 1] = seq or REPLACEMENT
    pos = pos + (seq and #seq or 1)
  end
  return table.concat(out)
end

local function escape_char(c)
  return ESCAPES[c] or string.format('\\u%04x', c:byte())
end

local function encode_string(s)
  return '"' .. valid_utf8(s):gsub('[%c"\\]', escape_char) .. '"'
end

local function encode_number(n)
  if math.type(n) == 'integer' then return string.format('%d', n) end
  if n ~= n or n == math.huge or n == -math.huge then
    error('json.encode: ' .. tostring(n) .. ' is not a JSON number', 0)
  end
  local s = string.format('%.14g', n)
  if tonumber(s) ~= n then s = string.format('%.17g', n) end
  return s
end

local encode_value

local function encode_table(t, out, stack)
  if stack[t] then error('json.encode: a table contains itself', 0) end
  stack[t] = true
  local n = #t
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  if getmetatable(t) == ARRAY_MT or (n > 0 and count == n) then
    if count ~= n then error('json.encode: an array has non-sequence keys', 0) end
    out[#out + 1] = '['
    for i = 1, n do
      if i > 1 then out[#out + 1] = ',' end
      encode_value(t[i], out, stack)
    end
    out[#out + 1] = ']'
  else
    local keys = {}
    for k in pairs(t) do
      if type(k) ~= 'string' then
        error('json.encode: object key ' .. tostring(k) .. ' is not a string', 0)
      end
      keys[#keys + 1] = k
    end
    table.sort(keys)
    out[#out + 1] = '{'
    for i, k in ipairs(keys) do
      if i > 1 then out[#out + 1] = ',' end
      out[#out + 1] = encode_string(k)
      out[#out + 1] = ':'
      encode_value(t[k], out, stack)
    end
    out[#out + 1] = '}'
  end
  stack[t] = nil
end

encode_value = function(v, out, stack)
  local kind = type(v)
  if v == json.null or v == nil then
    out[#out + 1] = 'null'
  elseif kind == 'boolean' then
    out[#out + 1] = v and 'true' or 'false'
  elseif kind == 'number' then
    out[#out + 1] = encode_number(v)
  elseif kind == 'string' then
    out[#out + 1] = encode_string(v)
  elseif kind == 'table' then
    encode_table(v, out, stack)
  else
    error('json.encode: cannot encode a ' .. kind, 0)
  end
end

function json.encode(value)
  local out = {}
  encode_value(value, out, {})
  return table.concat(out)
end

-- Decoding ----------------------------------------------------------------------------------------

local DecodeError = {} -- metatable tagging errors raised by the decoder itself

local function fail(text, pos, message)
  local line = select(2, text:sub(1, pos - 1):gsub('\n', '')) + 1
  error(setmetatable({ message = message .. ' at line ' .. line .. ', byte ' .. pos }, DecodeError), 0)
end

local function skip_space(text, pos)
  return text:find('[^ \t\r\n]', pos) or #text + 1
end

local decode_value

local SIMPLE_ESCAPES = { ['"'] = '"', ['\\'] = '\\', ['/'] = '/', b = '\b', f = '\f', n = '\n', r = '\r', t = '\t' }

local function decode_string(text, pos)
  local parts = {}
  local i = pos + 1
  while true do
    local special = text:find('["\\%c]', i)
    if not special then fail(text, pos, 'unterminated string') end
    parts[#parts + 1] = text:sub(i, special - 1)
    local c = text:sub(special, special)
    if c == '"' then
      return table.concat(parts), special + 1
    elseif c == '\\' then
      local e = text:sub(special + 1, special + 1)
      if SIMPLE_ESCAPES[e] then
        parts[#parts + 1] = SIMPLE_ESCAPES[e]
        i = special + 2
      elseif e == 'u' then
        local hex = text:match('^%x%x%x%x', special + 2)
        if not hex then fail(text, special, 'bad \\u escape') end
        local code = tonumber(hex, 16)
        i = special + 6
        if code >= 0xD800 and code <= 0xDBFF then
          local low = text:match('^\\u([dD][c-fC-F]%x%x)', i)
          if low then
            code = 0x10000 + (code - 0xD800) * 0x400 + (tonumber(low, 16) - 0xDC00)
            i = i + 6
          else
            code = 0xFFFD -- a lone high surrogate
          end
        elseif code >= 0xDC00 and code <= 0xDFFF then
          code = 0xFFFD -- a lone low surrogate
        end
        parts[#parts + 1] = utf8.char(code)
      else
        fail(text, special, 'bad escape \\' .. e)
      end
    else
      fail(text, special, 'control character in string')
    end
  end
end

local function decode_number(text, pos)
  local int_part = text:match('^-?%d+', pos)
  if not int_part then fail(text, pos, 'unexpected character') end
  if int_part:match('^-?0%d') then fail(text, pos, 'leading zero in number') end
  local stop = pos + #int_part
  local frac = text:match('^%.%d+', stop) or ''
  if frac == '' and text:sub(stop, stop) == '.' then fail(text, stop, 'digit expected after "."') end
  stop = stop + #frac
  local exp = text:match('^[eE][-+]?%d+', stop) or ''
  if exp == '' and text:match('^[eE]', stop) then fail(text, stop, 'digit expected in exponent') end
  stop = stop + #exp
  local literal = text:sub(pos, stop - 1)
  local value = tonumber(literal)
  if frac == '' and exp == '' then value = math.tointeger(value) or value end
  return value, stop
end

local LITERALS = { t = { 'true', true }, f = { 'false', false }, n = { 'null', json.null } }

local function decode_array(text, pos, depth)
  local out = json.array()
  pos = skip_space(text, pos + 1)
  if text:sub(pos, pos) == ']' then return out, pos + 1 end
  while true do
    out[#out + 1], pos = decode_value(text, pos, depth)
    pos = skip_space(text, pos)
    local c = text:sub(pos, pos)
    if c == ']' then return out, pos + 1 end
    if c ~= ',' then fail(text, pos, '"," or "]" expected') end
    pos = skip_space(text, pos + 1)
  end
end

local function decode_object(text, pos, depth)
  local out = {}
  pos = skip_space(text, pos + 1)
  if text:sub(pos, pos) == '}' then return out, pos + 1 end
  while true do
    if text:sub(pos, pos) ~= '"' then fail(text, pos, 'object key expected') end
    local key
    key, pos = decode_string(text, pos)
    pos = skip_space(text, pos)
    if text:sub(pos, pos) ~= ':' then fail(text, pos, '":" expected') end
    out[key], pos = decode_value(text, skip_space(text, pos + 1), depth)
    pos = skip_space(text, pos)
    local c = text:sub(pos, pos)
    if c == '}' then return out, pos + 1 end
    if c ~= ',' then fail(text, pos, '"," or "}" expected') end
    pos = skip_space(text, pos + 1)
  end
end

decode_value = function(text, pos, depth)
  pos = skip_space(text, pos)
  local c = text:sub(pos, pos)
  if c == '{' or c == '[' then
    if depth >= MAX_DEPTH then fail(text, pos, 'nesting deeper than ' .. MAX_DEPTH) end
    return (c == '{' and decode_object or decode_array)(text, pos, depth + 1)
  elseif c == '"' then
    return decode_string(text, pos)
  elseif LITERALS[c] then
    local word, value = LITERALS[c][1], LITERALS[c][2]
    if text:sub(pos, pos + #word - 1) ~= word then fail(text, pos, 'unexpected character') end
    return value, pos + #word
  elseif c == '' then
    fail(text, pos, 'unexpected end of input')
  end
  return decode_number(text, pos)
end

function json.decode(text)
  if type(text) ~= 'string' then return nil, 'expected a string, got ' .. type(text) end
  local ok, value, pos = pcall(function()
    local start = text:sub(1, 3) == '\xEF\xBB\xBF' and 4 or 1 -- tolerate a UTF-8 byte order mark
    local v, p = decode_value(text, start, 0)
    p = skip_space(text, p)
    if p <= #text then fail(text, p, 'trailing characters after the JSON value') end
    return v, p
  end)
  if ok then return value end
  if getmetatable(value) == DecodeError then return nil, 'invalid JSON: ' .. value.message end
  return nil, 'invalid JSON: ' .. tostring(value)
end

return json
