"""The built-in flow steps: AI calls (function, chat, embed, classify), mask, map, filter, route,
dedupe and batch. Each is configured in :mod:`interlace.flows.steps.config` and listed in
:mod:`interlace.flows.registry`."""

__all__: list[str] = []
