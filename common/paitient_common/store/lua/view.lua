-- What a gateway keeps in mind for the time the store may become unreachable: per tenant, the
-- period's usage (settled, floor) and open reservations, and its tokens-per-minute bucket's
-- level now.
--
-- KEYS: pairs of (usage hash, tenant tokens bucket)   ARGV: each bucket's capacity
-- Returns per pair {used, reserved, level (floor)}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local out = {}
for i = 1, #ARGV do
  local state = redis.call('HMGET', KEYS[2 * i - 1], 'sum', 'floor', 'reserved')
  local cap = tonumber(ARGV[i])
  local level = cap
  local raw = redis.call('GET', KEYS[2 * i])
  if raw then
    local l, u = string.match(raw, '^(%S+) (%S+)$')
    level = math.min(cap, tonumber(l) + math.max(0, now - tonumber(u)) * cap / 60000)
  end
  out[3 * i - 2] = math.max(tonumber(state[1] or '0'), tonumber(state[2] or '0'))
  out[3 * i - 1] = tonumber(state[3] or '0')
  out[3 * i] = math.floor(level)
end
return out
