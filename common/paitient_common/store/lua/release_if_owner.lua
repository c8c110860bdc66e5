-- Delete KEYS[1] only if it still holds ARGV[1]'s claim (the first bytes of its value are the
-- owner's token): a late abandon never deletes a record someone else claimed since.
local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, #ARGV[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
