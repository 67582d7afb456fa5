#!lua name=cache_app
-- The cache app's single-flight lock: the steps that must compare the holder's token and act in
-- one atomic step. The app takes a lock with a plain SET NX PX and calls these with FCALL, so its
-- ACL user needs no EVAL (which would run any Lua). An admin loads this library at deploy time
-- (FUNCTION LOAD REPLACE); the app never loads it.
-- KEYS[1] is always the lock key; the value stored there is the holder's random token.

-- Delete the lock if ARGV[1] still holds it. 1 if deleted, else 0.
local function unlock(keys, args)
  if redis.call('GET', keys[1]) == args[1] then
    return redis.call('DEL', keys[1])
  end
  return 0
end

-- Give the lock ARGV[2] more milliseconds if ARGV[1] still holds it. 1 if extended, else 0.
local function extend(keys, args)
  if redis.call('GET', keys[1]) == args[1] then
    return redis.call('PEXPIRE', keys[1], args[2])
  end
  return 0
end

-- Hand the lock to ARGV[2] for ARGV[3] milliseconds if its holder is still the one the caller
-- saw, ARGV[1] (or nobody holds it). 1 if taken over, else 0: another waiter got there first.
local function takeover(keys, args)
  local holder = redis.call('GET', keys[1])
  if holder ~= false and holder ~= args[1] then
    return 0
  end
  redis.call('SET', keys[1], args[2], 'PX', args[3])
  return 1
end

-- Releasing and extending never add data: allowed when Redis is past maxmemory, so a full
-- Redis does not leave locks standing.
redis.register_function{function_name = 'cache_app_unlock', callback = unlock, flags = {'allow-oom'}}
redis.register_function{function_name = 'cache_app_extend', callback = extend, flags = {'allow-oom'}}
redis.register_function{function_name = 'cache_app_takeover', callback = takeover}
