-- A gateway says it is alive (or leaving) in each set of gateways it belongs to, and learns
-- how many live members each set has: the N whose share (limit / N) each gateway enforces when
-- the store becomes unreachable.
--
-- KEYS[1..] membership sorted sets (member -> expiry, unix ms)
-- ARGV[1] member   ARGV[2] time to live (ms)   ARGV[3] "1": leave instead
-- Returns the live count of each set, this member included unless it left.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local member, ttl, leave = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1'
local counts = {}
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if leave then
    redis.call('ZREM', key, member)
  else
    redis.call('ZADD', key, now + ttl, member)
    redis.call('PEXPIRE', key, ttl * 10)
  end
  counts[i] = redis.call('ZCARD', key)
end
return counts
