"""The models the emulator serves, what a token costs on each, and their default rate limits.

Prices are USD per million tokens, close to OpenAI's public list prices, so that spend in tests
has realistic magnitudes (a few thousand emulated tokens cost fractions of a cent; a budget test
adds spend directly through the control endpoint instead of making millions of calls).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelInfo:
    id: str
    created: int
    input_per_million: float
    output_per_million: float
    requests_per_minute: int = 5_000
    tokens_per_minute: int = 2_000_000
    requests_per_day: int | None = None
    batch_day_input_tokens: int | None = 20_000_000


MODELS: dict[str, ModelInfo] = {
    m.id: m
    for m in (
        ModelInfo("gpt-4o-mini", 1721172741, 0.15, 0.60, requests_per_day=1_000_000),
        ModelInfo("gpt-4o", 1715367049, 2.50, 10.00),
        ModelInfo("gpt-4.1", 1744316542, 2.00, 8.00),
        ModelInfo("gpt-4.1-mini", 1744318173, 0.40, 1.60),
        ModelInfo("gpt-4.1-nano", 1744321707, 0.10, 0.40),
        ModelInfo("o4-mini", 1744225351, 1.10, 4.40),
        ModelInfo("gpt-5", 1754425777, 1.25, 10.00),
        ModelInfo("gpt-5-mini", 1754425928, 0.25, 2.00),
    )
}


def token_cost(model: str, input_tokens: int, output_tokens: int) -> tuple[float, float]:
    """USD cost of the input and the output side of one call."""
    info = MODELS[model]
    return (
        input_tokens * info.input_per_million / 1_000_000,
        output_tokens * info.output_per_million / 1_000_000,
    )


def line_item(model: str, side: str) -> str:
    """Costs line-item name, in the form the SDK documents (``"gpt-6-astra, input_tokens"``)."""
    return f"{model}, {side}_tokens"


def estimate_tokens(text: str) -> int:
    """A deterministic token estimate (about four characters per token, at least one)."""
    return max(1, (len(text) + 3) // 4)
