-- Argo CD health check for paitient.ai/ModelDeployment.
-- Install it as resource.customizations.health.paitient.ai_ModelDeployment in argocd-cm
-- (docs/helm.md, "Argo CD").
--
-- The operator writes status.phase (Pending | Progressing | Ready | Degraded | Failed), the
-- conditions behind it, and status.observedGeneration. A status older than the spec says nothing
-- about the spec, so it is Progressing until the operator has seen the latest generation.
local hs = {}

local function ready_condition(status)
  if status.conditions == nil then
    return nil
  end
  for _, condition in ipairs(status.conditions) do
    if condition.type == "Ready" then
      return condition
    end
  end
  return nil
end

local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report a status"
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local ready = ready_condition(status)
local message = status.message
if (message == nil or message == "") and ready ~= nil then
  message = ready.message
end
if message == nil or message == "" then
  message = status.phase
end
hs.message = message

if status.phase == "Ready" then
  hs.status = "Healthy"
elseif status.phase == "Failed" or status.phase == "Degraded" then
  -- Failed: the spec cannot be served until it changes (invalid, unencrypted storage, tier).
  -- Degraded: it was ready and lost replicas.
  hs.status = "Degraded"
elseif ready ~= nil and ready.reason == "ScaledToZero" then
  hs.status = "Suspended"
else
  -- Pending (waiting for GPUs or a node) and Progressing (pulling, loading, rolling out).
  hs.status = "Progressing"
end
return hs
