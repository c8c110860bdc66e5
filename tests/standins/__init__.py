"""Stand-ins for servers the tests cannot run here (vLLM needs a GPU)."""
