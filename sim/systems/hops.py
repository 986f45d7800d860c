"""How a call crosses from one service to another (issue 17): `via`, the `network:` key, costs.

A synchronous call (or an event to a service) goes `via`:
- `api_gateway`: through the callee Lambda's API Gateway (`api_gateway: http|rest` on its
  platform): the gateway's latency, and one API Gateway request per call in the callee's bill.
- `invoke`: the AWS SDK's Lambda Invoke API (no gateway, no gateway price): `network.invoke_latency`
  (ASSUMPTION 5 ms, as an HTTP API's added latency: AWS publishes no figure for the Invoke front
  end; forum.serverless.com/t/lambda-call-latency/3891 measured direct Invoke ~30 ms quicker than
  API Gateway from a browser, i.e. one layer less).
- `load_balancer`: into a cluster through its ALB: the cluster's `ingress_latency`, and the call
  counts as a load-balancer request (LCUs, and the cluster's `cost.cross_az` share of its bytes).
- `direct`: pod to pod (or through a service mesh): no added latency; its bytes cross AZs with
  the share `network.cross_az` (default: the callee cluster's `cost.cross_az`).
- a Wasm callee is always reached at its edge route (`edge_latency`); `via` does not apply.

Defaults per (caller platform, callee platform) pair (`default_via`): the same Kubernetes
platform -> direct; another Kubernetes platform -> load_balancer (direct when it has no load
balancer); Lambda or Wasm -> Kubernetes: load_balancer; Lambda -> Lambda: invoke; Kubernetes or
Wasm -> Lambda: api_gateway when the callee has one, else invoke. `network.hops` rules override the
defaults per platform pair, a call's own `via` overrides both.

NAT: a caller whose platform has `cost.nat.enabled` (a Lambda attached to a VPC, pods in private
subnets) reaches public endpoints through its NAT Gateway: the call's request + response bytes are
NAT-processed (nat_gateway.data, per GB, both directions) for `api_gateway`, `invoke` and Wasm
hops, and for `load_balancer` hops (ASSUMPTION: the ALB is internet-facing, as `load_balancer: alb`
bills it with public addresses), and a publish to SQS processes its message bytes (pod workers
behind NAT: the bytes they receive). An interface VPC endpoint listed in `network.vpc_endpoints`
(`sqs`, `lambda`, `execute-api`) carries that service's traffic instead: vpc_endpoint.data per GB
plus vpc_endpoint.hours per endpoint and AZ (`endpoint_azs`) for the whole window.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BeforeValidator, Field

from sim.config import Fraction, Strict
from sim.distributions import Distribution, coerce_distribution
from sim.workload import _size_distribution

Via = Literal["api_gateway", "invoke", "load_balancer", "direct"]
VIAS: tuple[str, ...] = get_args(Via)
EDGE = "edge"  # a Wasm callee's route (not a user setting)
Endpoint = Literal["sqs", "lambda", "execute-api"]
INVOKE_LATENCY_S = 0.005  # ASSUMPTION, see the module docstring
# A call's request, and its response, when nothing says (as Lambda's cost.request_size).
DEFAULT_CALL_BYTES = 1024.0

Dist = Annotated[Distribution, BeforeValidator(coerce_distribution)]
Size = Annotated[Distribution, BeforeValidator(_size_distribution)]


class HopRule(Strict):
    """The `via` of every call from services on `caller` to services on `callee` (platforms)."""

    caller: str = Field(min_length=1, description="the calling service's platform")
    callee: str = Field(min_length=1, description="the called service's platform")
    via: Via


class NetworkSpec(Strict):
    """`network:` of a system: hop defaults, call sizes, VPC endpoints, the cross-AZ share."""

    invoke_latency: Dist = Field(
        INVOKE_LATENCY_S,  # type: ignore[assignment]
        description="Lambda Invoke API latency per call (ASSUMPTION 5 ms)",
    )
    hops: list[HopRule] = Field(default_factory=list, description="`via` per platform pair")
    request_size: Size | None = Field(None, description="bytes per call request (default 1 KB)")
    response_size: Size | None = Field(
        None, description="bytes per call response (default: workload.service.response_size, 1 KB)"
    )
    cross_az: Fraction | None = Field(
        None, ge=0, le=1, description="share of direct hops crossing AZs (default: cost.cross_az)"
    )
    vpc_endpoints: list[Endpoint] = Field(
        default_factory=list, description="interface VPC endpoints: sqs, lambda, execute-api"
    )
    endpoint_azs: int = Field(2, ge=1, le=6, description="AZs each endpoint is provisioned in")


# Services reached over HTTPS at their platform's front end (Cloud Run's Google Front End, an
# ECS service's ALB, Container Apps' Envoy ingress, Knative's ingress gateway (Kourier / Istio:
# cluster-local calls go through it too), a Flex Consumption app's front end): `via:
# load_balancer`, its ingress_latency.
FRONT_END_TYPES = ("cloud_run", "fargate", "container_apps", "knative", "azure_flex")


def default_via(caller: Any, callee: Any) -> str:
    """The `via` of a call from a service on platform spec `caller` to one on `callee`."""
    if callee.type == "wasm":
        return EDGE
    if callee.type in FRONT_END_TYPES:
        return "load_balancer"
    if callee.type == "kubernetes":
        if caller.type == "kubernetes" and (
            caller.name == callee.name or callee.load_balancer.type == "none"
        ):
            return "direct"
        return "load_balancer"
    if callee.type == "lambda_managed":  # the Invoke API (no API Gateway setting)
        return "invoke"
    if caller.type != "lambda" and callee.api_gateway != "none":
        return "api_gateway"
    return "invoke"


def check_via(via: str, caller: Any, callee: Any) -> str | None:
    """Why `via` cannot carry a call from platform `caller` to `callee` (None: it can)."""
    if callee.type == "wasm":
        return f"platform {callee.name!r} is Wasm: it is called at its edge route, without `via`"
    if callee.type == "lambda":
        if via == "api_gateway" and callee.api_gateway == "none":
            return f"platform {callee.name!r} has `api_gateway: none`; use via: invoke"
        if via in ("load_balancer", "direct"):
            return f"a Lambda ({callee.name!r}) is called via api_gateway or invoke, not {via}"
        return None
    if callee.type == "kubernetes":
        if via in ("api_gateway", "invoke"):
            return f"a Kubernetes service ({callee.name!r}) is called via load_balancer or direct"
        if via == "load_balancer" and callee.load_balancer.type == "none":
            return f"platform {callee.name!r} has `load_balancer: none`; use via: direct"
        if via == "direct" and caller.type != "kubernetes":
            return (
                f"direct is pod to pod; a {caller.type} caller reaches {callee.name!r} "
                "via load_balancer"
            )
        return None
    if callee.type == "lambda_managed":
        if via != "invoke":
            return f"a Lambda Managed Instances function ({callee.name!r}) is called via invoke"
        return None
    if callee.type in FRONT_END_TYPES:
        if via != "load_balancer":
            return f"a {callee.type} service ({callee.name!r}) is called via load_balancer"
        return None
    return f"platform type {callee.type!r} cannot be called in a system"


def behind_nat(spec: Any) -> bool:
    cost = getattr(spec, "cost", None)
    nat = getattr(cost, "nat", None)
    return bool(getattr(nat, "enabled", False))


def endpoint_of(via: str) -> str | None:
    """The AWS public endpoint a hop reaches (what a VPC endpoint could carry), or None."""
    return {"api_gateway": "execute-api", "invoke": "lambda"}.get(via)


def cross_az_share(network: NetworkSpec | None, callee: Any) -> float:
    if network is not None and network.cross_az is not None:
        return float(network.cross_az)
    return float(getattr(getattr(callee, "cost", None), "cross_az", 0.0) or 0.0)
