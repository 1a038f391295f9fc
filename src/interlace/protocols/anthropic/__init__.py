"""Anthropic Messages ⇄ OpenAI Chat Completions translation (requests, responses and streams).

:mod:`.to_anthropic` serves the ``anthropic`` provider (canonical request → Anthropic, Anthropic
answers → canonical); :mod:`.from_anthropic` serves the gateway's Anthropic-compatible
``POST /v1/messages`` (Anthropic request → canonical, canonical answers → Anthropic).
"""

from interlace.protocols.anthropic.from_anthropic import (
    STOP_REASON_BY_FINISH_REASON,
    chat_response_to_messages,
    messages_request_to_chat,
)
from interlace.protocols.anthropic.response_to_chat import (
    FINISH_REASON_BY_STOP_REASON,
    messages_response_to_chat,
)
from interlace.protocols.anthropic.stream_to_chat import MessagesStreamToChatChunks
from interlace.protocols.anthropic.stream_to_messages import ChatChunksToMessagesStream, StreamEvent
from interlace.protocols.anthropic.to_anthropic import DEFAULT_MAX_TOKENS, chat_request_to_messages

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "FINISH_REASON_BY_STOP_REASON",
    "STOP_REASON_BY_FINISH_REASON",
    "ChatChunksToMessagesStream",
    "MessagesStreamToChatChunks",
    "StreamEvent",
    "chat_request_to_messages",
    "chat_response_to_messages",
    "messages_request_to_chat",
    "messages_response_to_chat",
]
