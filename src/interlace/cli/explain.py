"""``interlace route explain``: how a request would be routed, without starting anything.

Builds the routing objects from the configuration exactly as the gateway does (providers are built
but not started: no network, no database, no model load) and prints, for one described request: each
traffic rule and why it did or did not match, the alias that serves it, its strategy, its deployments
in the strategy's order (provider, upstream model, weight, tags, price, timeouts, whether each has the
required tags, whether the caller's residency rule allows it and whether it can continue a cut
stream), the retry and breaker policies, the fallback, context
and content-policy chains, and the shadow configuration.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from interlace.cli.options import ConfigOption, fail, load_settings
from interlace.core.errors import ConfigError, ModelNotFound, RequestError

if TYPE_CHECKING:
    from collections.abc import ItemsView, Mapping

    from rich.table import Table

    from interlace.config.schema import Config, ModelConfig
    from interlace.providers.local import SentenceEncoder
    from interlace.routing.deployment import Deployment, ModelRoute
    from interlace.routing.rules import RequestFacts
    from interlace.security.residency import ResidencyRule

__all__ = ["explain_request", "route_app"]

route_app = typer.Typer(name="route", help="Inspect routing without starting a server.", no_args_is_help=True)

_ORDER = {
    "weighted": "weighted random, drawn per request (this is one draw)",
    "round_robin": "each deployment goes first in turn",
    "least_in_flight": "fewest requests in flight first (none yet: weighted random)",
    "lowest_latency": "lowest latency first, unmeasured first (none measured yet: weighted random)",
    "cost": "cheapest first by price",
}


@route_app.command("explain")
def explain(
    *,
    model: Annotated[str, typer.Option("--model", "-m", help="The model alias the client asks for.")],
    config: ConfigOption = None,
    header: Annotated[
        list[str] | None,
        typer.Option("--header", "-H", metavar="NAME=VALUE", help="A request header; repeatable."),
    ] = None,
    user: Annotated[str | None, typer.Option(help="The body's user field.")] = None,
    tags: Annotated[
        str | None, typer.Option(metavar="NAME=VALUE,...", help="Required deployment tags, e.g. region=eu.")
    ] = None,
    metadata: Annotated[
        list[str] | None,
        typer.Option("--metadata", metavar="NAME=VALUE", help="Request metadata; repeatable."),
    ] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", help="The caller's API key id.")] = None,
    tenant: Annotated[str | None, typer.Option(help="The caller's tenant.")] = None,
) -> None:
    """Explain how a request for MODEL would be routed: rules, deployments, policies, chains."""
    from interlace.routing.rules import RequestFacts  # noqa: PLC0415 - routing only when it runs

    try:
        settings = load_settings(config)
        headers = {name.lower(): value for name, value in _pairs(header or [], "--header").items()}
        facts = RequestFacts(
            model=model,
            headers=headers,
            api_key=api_key,
            tenant=tenant,
            user=user,
            metadata=_pairs(metadata or [], "--metadata"),
        )
        explain_request(settings, facts, tags=tags, console=Console())
    except ConfigError as exc:
        fail(str(exc))
    except (RequestError, ModelNotFound) as exc:
        fail(exc.message, code=1)


def _pairs(items: list[str], option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            name, sep, value = item.partition(":")
        if not (sep and name.strip()):
            raise RequestError(f"{option} takes NAME=VALUE, got {item!r}")
        pairs[name.strip()] = value.strip()
    return pairs


def explain_request(config: Config, facts: RequestFacts, *, tags: str | None, console: Console) -> ModelRoute:
    """Print how ``facts`` would be routed under ``config``; the route that would serve it."""
    from interlace.resilience.retry import parse_deadline_header  # noqa: PLC0415 - the gateway's parts
    from interlace.routing.rules import TrafficRules  # noqa: PLC0415
    from interlace.routing.strategies import parse_tags_header  # noqa: PLC0415
    from interlace.runtime import build_routes  # noqa: PLC0415
    from interlace.security.residency import ResidencyPolicy  # noqa: PLC0415

    rng = random.Random()  # noqa: S311 - the same draws the gateway would make, not security

    def encoders(model: str) -> SentenceEncoder:
        from interlace.providers.local import build_encoder  # noqa: PLC0415 - only for local models

        return build_encoder(model, config.local)

    routes = build_routes(config, rng=rng, encoders=encoders)
    rules = TrafficRules(config.routing.rules, rng=rng)
    state = rng.getstate()
    lines = rules.explain(facts)
    rng.setstate(state)  # decide() draws what explain() drew: a random split shows the arm it picks
    decision = rules.decide(facts)

    routing = config.routing
    required = parse_tags_header(facts.headers.get(routing.tags_header.lower()), header=routing.tags_header)
    required |= parse_tags_header(tags, header="--tags")
    required |= decision.require_tags
    deadline = parse_deadline_header(
        facts.headers.get(routing.deadline_header.lower()),
        default=routing.max_deadline,
        maximum=routing.max_deadline,
        header=routing.deadline_header,
    )

    console.rule("traffic rules")
    for line in lines:
        console.print(escape(line), highlight=False)
    route = routes.get(decision.model)
    if route is None:
        raise ModelNotFound(decision.model, list(routes))
    policy = ResidencyPolicy.from_config(config, routes)
    residency = policy.rule_for(facts.tenant) if policy is not None else None
    console.rule(f"model {escape(route.alias)}")
    _print_model(console, route, required, deadline)
    console.print(
        f"[bold]residency:[/] {escape(residency.label if residency else 'no rule')}", highlight=False
    )
    console.print(_deployments(route, required, residency))
    _print_policies(console, route.config, routes)
    return route


def _print_model(console: Console, route: ModelRoute, required: Mapping[str, str], deadline: float) -> None:
    model = route.config
    rows = [
        ("resolved alias", route.alias + (f" — {model.description}" if model.description else "")),
        ("serves", ", ".join(sorted(route.operations)) or "nothing"),
        ("strategy", f"{model.strategy}: {_ORDER[model.strategy]}"),
        ("required tags", _tags(required) or "none"),
        ("deadline", f"{deadline:g}s"),
    ]
    for name, value in rows:
        console.print(f"[bold]{name}:[/] {escape(value)}", highlight=False)


def _deployments(route: ModelRoute, required: Mapping[str, str], residency: ResidencyRule | None) -> Table:
    from rich.table import Table  # noqa: PLC0415

    table = Table(title=f"deployments of {route.alias}, in the strategy's order")
    for column in (
        "#",
        "deployment",
        "provider",
        "upstream model",
        "weight",
        "tags",
        "price in/out per 1M",
        "timeouts",
        "has tags",
        "prefill",
        "concurrency",
    ):
        table.add_column(column)
    if residency is not None:  # only when a rule applies: region and type decide nothing otherwise
        table.add_column("residency")
    wanted = required.items()
    for rank, deployment in enumerate(route.strategy.order(route.deployments), start=1):
        table.add_row(*(escape(cell) for cell in _deployment_row(rank, deployment, wanted, residency)))
    return table


def _deployment_row(
    rank: int, deployment: Deployment, wanted: ItemsView[str, str], residency: ResidencyRule | None
) -> list[str]:
    cfg = deployment.config
    t, price = cfg.timeouts, cfg.price
    limit = "unbounded" if cfg.max_concurrency is None else f"{cfg.max_concurrency} (+{cfg.max_queue} queued)"
    declared = "" if cfg.supports_prefill is None else " (declared)"
    has_tags = deployment.tags.items() >= wanted
    row = [
        str(rank),
        deployment.name,
        deployment.provider.kind + (" (azure)" if cfg.api_style == "azure" else ""),
        cfg.model,
        f"{cfg.weight:g}",
        _tags(deployment.tags) or "-",
        f"${price.input:g} / ${price.output:g}",
        (
            f"connect {t.connect:g}s, first byte {t.first_byte:g}s, first token {t.first_token:g}s, "
            f"idle {t.idle:g}s, total {t.total:g}s"
        ),
        "yes" if has_tags else "NO — skipped",
        ("yes" if deployment.supports_prefill else "no") + declared,
        limit,
    ]
    if residency is not None:
        excluded = residency.exclusion(cfg)
        where = f"{cfg.region or 'no region'}, {cfg.provider_type}"
        row.append(f"allowed ({where})" if excluded is None else f"NO ({excluded}) — skipped")
    return row


def _print_policies(console: Console, model: ModelConfig, routes: Mapping[str, ModelRoute]) -> None:
    retry, breaker = model.retry, model.breaker
    rows = [
        (
            "retry",
            (
                f"up to {retry.max_attempts} attempts across the deployments; backoff up to "
                f"{retry.base_delay:g}s * 2^n (at most {retry.max_delay:g}s), full jitter; "
                f"a Retry-After over {retry.max_retry_after:g}s is not waited for"
            ),
        ),
        (
            "breaker",
            f"opens at {breaker.failure_rate:.0%} failures of at least {breaker.min_requests} calls in "
            f"{breaker.window:g}s, stays open {breaker.open_for:g}s, then {breaker.half_open_probes} "
            "half-open probe(s)"
            if breaker.enabled
            else "disabled",
        ),
        ("fallbacks", _chain(model.fallbacks, routes, "the error is returned")),
        ("context fallbacks", _chain(model.context_fallbacks, routes, "a context-window error is returned")),
        (
            "content-policy fallbacks",
            _chain(model.content_policy_fallbacks, routes, "a content-policy refusal is returned"),
        ),
        (
            "shadow",
            f"mirrors {model.shadow.sample:.0%} of answered chat requests to {model.shadow.model} "
            "in the background (never billed to the caller)"
            if model.shadow is not None
            else "none",
        ),
    ]
    for name, value in rows:
        console.print(f"[bold]{name}:[/] {escape(value)}", highlight=False)


def _chain(aliases: list[str], routes: Mapping[str, ModelRoute], otherwise: str) -> str:
    if not aliases:
        return f"none ({otherwise})"
    return " → ".join(f"{a} ({len(routes[a].deployments)} deployment(s))" for a in aliases)


def _tags(tags: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in tags.items())
