"""The Python examples of the API reference (seed-api-reference.txt), shared by the SDK's own
tests and the contract tests against the running stack (tests/integration/test_sdk_contract.py)."""

# Copied character for character from the API reference (seed-api-reference.txt). The
# reference lost the indentation inside the try block (a SyntaxError as printed); it is
# restored there and nowhere else.
SEED_EXAMPLES = [
    """# Python example
from paitient_secure_model import SecureModelClient
client = SecureModelClient(
api_key="your-api-key",
client_id="your-client-id"
)""",
    """# Python example - Create a deployment
deployment = client.deploy_model(
model_name="ZimaBlueAI/HuatuoGPT-o1-8B",
deployment_name="my-secure-model",
use_gpu=True
)
# Get deployment status
status = client.get_deployment_status(deployment_id=deployment.id)""",
    """# Python example
result = client.generate(
deployment_id="deployment-123",
prompt="Explain the importance of HIPAA compliance in healthcare AI",
max_tokens=500,
temperature=0.7
)
print(result.text)""",
    """# Python example
subscription = client.get_subscription()
print(f"Tier: {subscription.tier}")
print(f"Usage: {subscription.current_usage}/{subscription.usage_limit}")""",
    """# Python example
from paitient_secure_model import SecureModelClient, AuthenticationError, ValidationError
try:
    client = SecureModelClient(api_key="invalid-key", client_id="invalid-id")
    client.deploy_model(model_name="ZimaBlueAI/HuatuoGPT-o1-8B")
except AuthenticationError as e:
    print(f"Authentication error: {e}")
except ValidationError as e:
    print(f"Validation error: {e}")
except Exception as e:
    print(f"Other error: {e}")""",
]
