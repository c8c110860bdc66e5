-- A gateway says it is alive (or leaving) in each set of gateways it belongs to, and learns how
-- many live members each set has (the N whose share, limit / N, each gateway enforces while the
-- store is unreachable) and the store's epoch: a name made by the first beat that finds none,
-- so a store that lost its data (restarted empty) is noticed by every gateway at its next beat.
--
-- KEYS[1] the epoch key   KEYS[2..] membership sorted sets (member -> expiry, unix ms)
-- ARGV[1] member   ARGV[2] time to live (ms)   ARGV[3] "1": leave instead
-- ARGV[4] a new epoch's name, used if there is none
-- Returns {epoch name, epoch age (ms), then the live count of each set}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local member, ttl, leave = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1'
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[4] .. ' ' .. tostring(now)
  redis.call('SET', KEYS[1], epoch)
end
local name, born = string.match(epoch, '^(%S+) (%S+)$')
local out = {name, math.floor(now - tonumber(born))}
for i = 2, #KEYS do
  local key = KEYS[i]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if leave then
    redis.call('ZREM', key, member)
  else
    redis.call('ZADD', key, now + ttl, member)
    redis.call('PEXPIRE', key, ttl * 10)
  end
  out[i + 1] = redis.call('ZCARD', key)
end
return out
