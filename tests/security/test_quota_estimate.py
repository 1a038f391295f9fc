"""What a request may use before it is answered: token estimates and the worst-case price."""

from __future__ import annotations

from interlace.config import parse_config
from interlace.core.operations import ChatRequest, ClassifyRequest, EmbeddingRequest, InferRequest
from interlace.security.quotas import PriceBook, output_tokens, prompt_tokens
from interlace.security.quotas.estimate import NON_TEXT_PART_TOKENS


def chat(**body: object) -> ChatRequest:
    return ChatRequest(model="m", body={"model": "m", **body})


def test_chat_prompts_count_text_parts_tools_and_a_bound_for_images() -> None:
    op = chat(
        messages=[
            {"role": "system", "content": "12345678"},  # 2 tokens
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "1234"},  # 1
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                ],
            },
        ],
        tools=[{"type": "function", "function": {"name": "f"}}],  # 46 characters of JSON: 12
    )
    assert prompt_tokens(op) == 2 + 1 + NON_TEXT_PART_TOKENS + 12


def test_output_is_the_requests_bound_times_its_choices_or_the_default() -> None:
    assert output_tokens(chat(messages=[]), 512) == 512
    assert output_tokens(chat(messages=[], max_tokens=20), 512) == 20
    assert output_tokens(chat(messages=[], max_completion_tokens=30, max_tokens=20), 512) == 30
    assert output_tokens(chat(messages=[], max_tokens=20, n=3), 512) == 60
    embedding = EmbeddingRequest(model="m", inputs=["12345678", "1234"])
    assert (prompt_tokens(embedding), output_tokens(embedding, 512)) == (3, 0)
    assert prompt_tokens(EmbeddingRequest(model="m", inputs=[[1, 2, 3], [4]])) == 4
    assert prompt_tokens(ClassifyRequest(model="m", inputs=["12345678"], labels=["ab", "cd"])) == 4
    assert prompt_tokens(InferRequest(model="m", body={})) == 0


def test_the_worst_case_price_is_the_dearest_deployment_a_request_can_reach() -> None:
    config = parse_config(
        """
models:
  cheap:
    fallbacks: [mid]
    deployments:
      - {provider: fake, model: a, price: {input: 1, output: 2}}
      - {provider: fake, model: b, price: {input: 0.5, output: 4, cached_input: 0.1}}
  mid:
    fallbacks: [dear]
    deployments: [{provider: fake, model: c, price: {input: 3, output: 1}}]
  dear:
    deployments: [{provider: fake, model: d, price: {input: 2, output: 6, reasoning: 9}}]
  lone:
    deployments: [{provider: fake, model: e, price: {input: 0.15, output: 0.6}}]
  canary:
    deployments: [{provider: fake, model: f, price: {input: 100, output: 100}}]
routing:
  rules:
    - name: try-canary
      match: {model: lone}
      split: [{model: lone, weight: 9}, {model: canary, weight: 1}]
""",
        filename="p.yaml",
        environ={},
    )
    prices = PriceBook(config)
    # cheap reaches mid and dear through fallbacks: input 3 (mid), output 9 (dear's reasoning), per million
    assert prices.worst_case_nanos("cheap", 1_000_000, 1_000_000) == (3 + 9) * 10**9
    assert prices.worst_case_nanos("dear", 1000, 0) == 2000 * 1000
    assert prices.worst_case_nanos("mid", 1, 1) == 3000 + 9000
    assert prices.worst_case_nanos("canary", 1, 0) == 100_000
    assert prices.worst_case_nanos("lone", 7, 0) == 700_000  # a rule may send it to the canary
    assert prices.worst_case_nanos("unknown", 100, 100) == 0
    # without the rule, lone is priced alone: 0.15 USD per million is 150 nano-dollars a token, exactly
    no_rules = config.model_copy(update={"routing": config.routing.model_copy(update={"rules": []})})
    assert PriceBook(no_rules).worst_case_nanos("lone", 7, 3) == 7 * 150 + 3 * 600
