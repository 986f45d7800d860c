"""sim: a discrete-event simulator comparing AWS Lambda, Wasm serverless and Kubernetes+KEDA."""

__version__ = "0.1.0"
